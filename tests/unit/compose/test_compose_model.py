"""The rest of the compose model (issue 17 item 6): extends, profiles, every error at once, volumes scoped to the
stack, and the leniencies Rancher 1.6 had (each with a warning)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.compose import ComposeFile, env_files_for_upload, load_stack
from corral.model.errors import InvalidInput
from corral.model.stack import LaunchConfig, ServiceSpec, VolumeSpec

from .helpers import DC, RC, error, service_error, stack


def test_extends_merges_as_compose_does() -> None:
    spec = stack(
        """
        services:
          base:
            image: nginx
            environment: {A: "1", B: "2"}
            ports: ["8080:80"]
            volumes: ["/srv/a:/a", "/srv/b:/b"]
            labels: [x=1]
          web:
            extends: base
            environment: [B=3, C=4]
            ports: ["8443:443"]
            volumes: ["/srv/c:/b"]
            labels: {y: "2"}
            command: run
        """
    )
    web = spec.service("web")
    assert web is not None
    assert dict(web.launch.environment) == {"A": "1", "B": "3", "C": "4"}
    assert sorted(p.host_port or 0 for p in web.launch.ports) == [8080, 8443]
    assert web.launch.volumes == (VolumeSpec("bind", "/a", "/srv/a"), VolumeSpec("bind", "/b", "/srv/c"))
    assert dict(web.launch.labels) == {"x": "1", "y": "2"}
    assert web.launch.command == ("run",)


def test_extends_chains_and_cycles() -> None:
    spec = stack(
        "services:\n  a: {image: nginx, user: u}\n  b: {extends: {service: a}, tty: true}\n  c: {extends: b}\n"
    )
    c = spec.service("c")
    assert c is not None and c.launch.user == "u" and c.launch.tty
    exc = error("services:\n  a: {extends: b, image: x}\n  b: {extends: a, image: y}\n")
    assert "extends cycle: a -> b -> a" in exc.message


def test_extends_from_another_file_reads_below_the_compose_folder(tmp_path: Path) -> None:
    (tmp_path / "common.yml").write_text("services:\n  base:\n    image: redis\n    environment: [K=v]\n")
    text = "services:\n  cache:\n    extends: {file: common.yml, service: base}\n"
    compose = ComposeFile(DC, text, str(tmp_path))
    assert dict(load_stack("app", compose).services[0].launch.environment) == {"K": "v"}
    # a client uploads the file's content with the compose file; the server reads nothing from disk
    uploaded = env_files_for_upload(compose)
    spec = load_stack("app", ComposeFile(DC, text), env_files=uploaded)
    assert spec.services[0].launch.image == "redis"
    exc = error(text)
    assert exc.field == f"{DC}:services.cache.extends.file"
    assert "extends file 'common.yml' was not provided" in exc.message


def test_profiles_enable_services() -> None:
    text = """
    services:
      web: {image: nginx}
      debug: {image: busybox, profiles: [debug]}
      tools: {image: busybox, profiles: [ops, debug]}
    """
    assert [s.name for s in stack(text).services] == ["web"]
    assert sorted(s.name for s in stack(text, profiles=frozenset({"ops"})).services) == ["tools", "web"]
    assert len(stack(text, profiles=frozenset({"*"})).services) == 3


def test_a_dependency_left_out_by_profiles_is_named() -> None:
    exc = error("services:\n  web: {image: nginx, depends_on: [db]}\n  db: {image: pg, profiles: [data]}\n")
    assert exc.field == f"{DC}:services.web.depends_on[0]"
    assert "names service 'db', which its profiles leave out" in exc.message


def test_every_error_of_a_file_is_reported_at_once() -> None:
    exc = error(
        """
        services:
          a: {image: nginx, restart: sometimes}
          b: {image: nginx, ports: ["x:80"]}
          c: {image: nginx}
          d: {image: nginx, volumes: ["undeclared:/data"]}
        """
    )
    assert exc.message.startswith("3 errors:")
    for service in ("a", "b", "d"):
        assert f"service {service}:" in exc.message
    assert exc.field == f"{DC}:services.a.restart"


def test_environment_key_alone_comes_from_the_callers_values_or_stays_unset() -> None:
    text = "services:\n  web:\n    image: nginx\n    environment: [HOME_DIR, MISSING]\n"
    assert stack(text, answers={"HOME_DIR": "/home/me"}).services[0].launch.environment == (("HOME_DIR", "/home/me"),)


def test_named_volumes_are_scoped_to_the_stack_unless_external_or_named() -> None:
    spec = stack(
        """
        services:
          web:
            image: nginx
            volumes: [data:/data, shared:/shared, fixed:/fixed]
        volumes:
          data: {}
          shared: {external: true}
          fixed: {name: exact}
        """
    )
    assert [v.source for v in spec.services[0].launch.volumes] == ["app_data", "shared", "exact"]
    assert [v.scope for v in spec.services[0].launch.volumes] == ["", "environment", ""]


def test_rancher_volume_scopes_per_container_and_external() -> None:
    spec = stack(
        """
        services:
          web:
            image: nginx
            volumes: [cache:/cache, shared:/shared:ro, data:/data]
        volumes:
          cache: {per_container: true}
          shared: {external: true}
          data: {}
        """
    )
    cache, shared, data = spec.services[0].launch.volumes
    assert (cache.source, cache.scope, cache.docker_source(2)) == ("app_cache", "container", "app_cache_2")
    assert (shared.source, shared.scope, shared.docker_source(2), shared.read_only) == (
        "shared",
        "environment",
        "shared",
        True,
    )
    assert (data.scope, data.docker_source(2)) == ("", "app_data")
    assert spec.warnings == ()  # per_container is honoured, no longer warned
    stored = spec.services[0].launch.to_dict()
    assert "scope" not in stored["volumes"][2]  # config hashes of existing stacks stay as they were
    assert LaunchConfig.from_dict(json.loads(json.dumps(stored))) == spec.services[0].launch


def test_an_external_volume_cannot_be_per_container() -> None:
    text = "services:\n  web: {image: nginx, volumes: ['x:/x']}\nvolumes:\n  x: {external: true, per_container: true}\n"
    with pytest.raises(InvalidInput) as info:
        stack(text)
    assert info.value.field == f"{DC}:volumes.x.per_container"


def test_an_undeclared_named_volume_is_refused_as_compose_does() -> None:
    exc = service_error("image: nginx\nvolumes: ['other:/data']\n")
    assert exc.field == f"{DC}:services.web.volumes[0]"
    assert "volume 'other' is not declared" in exc.message
    # version 1 files have no top-level volumes: names are used as written
    assert stack("web:\n  image: nginx\n  volumes: ['other:/data']\n").services[0].launch.volumes[0].source == "other"


def test_host_network_with_ports_is_refused_at_validation() -> None:
    exc = service_error("image: nginx\nnetwork_mode: host\nports: ['80:80']\n")
    assert exc.field == f"{DC}:services.web.ports"
    assert "host's network cannot publish ports" in exc.message


@pytest.mark.parametrize("name", ["MyService", "Web"])
def test_mixed_case_service_names_are_lowercased_with_a_warning(name: str) -> None:
    spec = stack(
        f"version: '2'\nservices:\n  {name}: {{image: nginx}}\n  other: {{image: nginx, links: ['{name}:alias']}}\n",
        f"version: '2'\nservices:\n  {name}: {{scale: 2}}\n",
    )
    lowered = spec.service(name.lower())
    assert lowered is not None and lowered.scale == 2
    other = spec.service("other")
    assert other is not None and other.launch.links == (f"{name.lower()}:alias",)
    assert f"{DC}: service {name!r} is named {name.lower()!r} (container and DNS names are lowercase)" in spec.warnings


def test_expose_with_a_host_port_exposes_the_container_side_with_a_warning() -> None:
    spec = stack("version: '2'\nservices:\n  web: {image: nginx, expose: ['8080:80', '53:53/udp']}\n")
    assert spec.services[0].launch.expose == ("80", "53/udp")
    assert any("'8080:80' names a host port" in w for w in spec.warnings)


def test_rancher_compose_for_an_undefined_service_is_a_warning() -> None:
    spec = stack("version: '2'\nservices:\n  web: {image: nginx}\n", "version: '2'\nservices:\n  lb: {scale: 1}\n")
    assert f"{RC}: service 'lb' is not defined in {DC}; its settings were ignored" in spec.warnings


def test_engine_options_pass_through_as_compose_spells_them() -> None:
    launch = (
        stack(
            """
        services:
          web:
            image: nginx
            init: true
            read_only: true
            shm_size: 64m
            stop_signal: SIGQUIT
            extra_hosts: ["db.local:10.0.0.5", "v6=::1"]
            tmpfs: /run
            ulimits: {nproc: 65535, nofile: {soft: 1024, hard: 2048}}
        """
        )
        .services[0]
        .launch
    )
    assert (launch.init, launch.read_only, launch.shm_size_bytes, launch.stop_signal) == (
        True, True, 64 * 1024**2, "SIGQUIT",
    )  # fmt: skip
    assert launch.extra_hosts == ("db.local:10.0.0.5", "v6:::1")
    assert launch.tmpfs == ("/run",)
    assert launch.ulimits == (("nofile", 1024, 2048), ("nproc", 65535, 65535))


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("ulimits: {nofile: {soft: 10, hard: 5}}", "ulimits.nofile", "above the hard limit"),
        ("ulimits: {nofile: {soft: 10}}", "ulimits.nofile", "needs both soft and hard"),
        ("extra_hosts: ['db:not-an-ip']", "extra_hosts[0]", "is not an IP address"),
        ("tmpfs: [run]", "tmpfs[0]", "must be an absolute path"),
        ("stop_signal: 'kill me'", "stop_signal", "is not a signal"),
    ],
)
def test_bad_engine_options_name_the_field(body: str, field: str, reason: str) -> None:
    exc = service_error("image: nginx\n" + body + "\n")
    assert exc.field == f"{DC}:services.web.{field}"
    assert reason in exc.message


def test_links_order_start_up_like_depends_on() -> None:
    spec = stack("services:\n  web: {image: nginx, links: ['db:database']}\n  db: {image: postgres}\n")
    assert [s.name for s in spec.services] == ["db", "web"]
    web = spec.service("web")
    assert web is not None and web.depends_on == ("db",)
    # Rancher 1.6 allowed links both ways: kept for DNS, they order nothing then (warned)
    cyclic = stack("services:\n  a: {image: x, links: [b]}\n  b: {image: x, depends_on: [a]}\n")
    assert [s.depends_on for s in cyclic.services] == [(), ("a",)]
    assert any("form a cycle: they give DNS names but do not order start-up" in w for w in cyclic.warnings)


def test_networks_are_segments_named_for_the_stack_with_default_and_external() -> None:
    spec = stack(
        """
        services:
          web: {image: nginx, networks: [front]}
          api:
            image: app
            networks:
              front: {aliases: [backend]}
              back: {}
          db: {image: postgres, networks: [back, shared]}
          tool: {image: app}
        networks:
          front: {}
          back: {internal: true}
          shared: {external: true}
        """
    )
    nets = {s.name: s.networks for s in spec.services}
    assert nets == {
        "web": ("app_front",),
        "api": ("app_back", "app_front"),
        "db": ("app_back", "shared"),
        "tool": ("app_default",),
    }
    text = "\n".join(spec.warnings)
    assert spec.service("api").network_aliases == (("app_front", "backend"),)  # type: ignore[union-attr]
    assert "aliases" not in text
    assert "internal" not in text  # enforced by each host (network/segments.py), no longer warned
    internal = {s.name: s.internal for s in spec.services}
    assert internal == {"web": False, "api": False, "db": False, "tool": False}  # db is on `shared` too
    assert "internal" not in spec.service("web").to_dict()  # type: ignore[union-attr]
    assert spec.service("web").to_dict()["networks"] == ("app_front",)  # type: ignore[union-attr]


def test_a_stack_without_networks_stays_on_the_flat_network() -> None:
    spec = stack("services:\n  web: {image: nginx}\n  db: {image: postgres}\n")
    assert [s.networks for s in spec.services] == [(), ()]
    assert "networks" not in spec.services[0].to_dict()  # stored specs of existing stacks stay as they were


def test_an_undeclared_network_and_network_mode_with_networks_are_refused() -> None:
    exc = error("services:\n  web: {image: nginx, networks: [nowhere]}\n")
    assert exc.field == f"{DC}:services.web.networks.nowhere"
    assert "network 'nowhere' is not declared" in exc.message
    exc = error("services:\n  web: {image: nginx, network_mode: host, networks: [default]}\n")
    assert exc.field == f"{DC}:services.web.networks"


def test_a_service_on_internal_networks_only_is_internal() -> None:
    spec = stack(
        """
        services:
          db: {image: postgres, networks: [back]}
          api: {image: app, networks: [back, front]}
          worker: {image: app, networks: [back, jobs]}
        networks:
          back: {internal: true}
          jobs: {internal: true, name: all_jobs}
          front: {}
        """
    )
    assert {s.name: s.internal for s in spec.services} == {"db": True, "api": False, "worker": True}
    assert spec.service("db").to_dict()["internal"] is True  # type: ignore[union-attr]
    assert ServiceSpec.from_dict(spec.service("db").to_dict()).internal  # type: ignore[union-attr]
