"""The dangerous-container policy (model/policy.py): what it refuses in a locked environment, what an allowing one
lets through as a warning, and that no compose key reaching Docker escapes it."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.compose import ComposeFile, load_stack
from corral.compose.service import SUPPORTED_KEYS
from corral.model.errors import InvalidInput
from corral.model.policy import (
    ALL,
    CHECKED_COMPOSE_KEYS,
    GUARDED_COMPOSE_KEYS,
    LOCKED,
    OPEN,
    SETTINGS,
    ContainerPolicy,
    PolicyRefused,
    enforce,
    findings,
    is_system_path,
    normalise_path,
    parse_settings,
    violations,
)
from corral.model.stack import LaunchConfig, ServiceSpec, StackSpec, VolumeSpec

# One compose body per enforced setting: the service alone asks for exactly that setting.
DANGEROUS = {
    "privileged": ("privileged: true", "privileged", "true"),
    "cap_add": ("cap_add: [NET_ADMIN, SYS_TIME]", "cap_add", "NET_ADMIN, SYS_TIME"),
    "host_network": ("network_mode: host", "network_mode", "host"),
    "system_mounts": ("volumes: ['/var/run/docker.sock:/var/run/docker.sock']", "volumes", "/var/run/docker.sock"),
    "host_pid": ("pid: host", "pid", "host"),
    "host_ipc": ("ipc: host", "ipc", "host"),
    "devices": ("devices: ['/dev/kvm', '/dev/fuse:/dev/fuse:rw']", "devices", "/dev/kvm, /dev/fuse"),
}


def compose(body: str, name: str = "web") -> StackSpec:
    text = f"services:\n  {name}:\n    image: nginx\n" + textwrap.indent(textwrap.dedent(body), "    ")
    text += "\nvolumes:\n  etc: {}\n"  # named volumes are declared, as in Compose
    return load_stack("app", ComposeFile("docker-compose.yml", text), None, answers={}, env_files={})


def bind(source: str) -> StackSpec:
    volume = VolumeSpec(kind="bind", target="/mnt", source=source)
    return StackSpec("app", (ServiceSpec("web", LaunchConfig(image="nginx", volumes=(volume,))),))


@pytest.mark.parametrize("setting", sorted(DANGEROUS))
def test_each_dangerous_field_is_refused_when_locked_and_allowed_by_its_setting(setting: str) -> None:
    body, field, value = DANGEROUS[setting]
    spec = compose(body)
    [found] = violations(spec, LOCKED)
    assert (found.service, found.setting, found.field) == ("web", setting, field)
    assert value in found.value
    message = found.refusal("prod")
    assert message.startswith(f'service "web": {field}: {value}')
    assert message.endswith(
        f'not allowed in environment "prod" (allow it with: corral env update prod --allow {setting})'
    )
    assert violations(spec, ContainerPolicy(frozenset({setting}))) == []
    assert violations(spec, OPEN) == []
    others = frozenset(SETTINGS) - {setting}
    assert violations(spec, ContainerPolicy(others)) == [found]


def test_net_host_is_host_network_too() -> None:
    assert [f.setting for f in violations(compose("net: host"), LOCKED)] == ["host_network"]


def test_refusal_lists_every_violation_of_every_service() -> None:
    text = """\
        services:
          a: {image: nginx, privileged: true, network_mode: host}
          b: {image: nginx, cap_add: [SYS_ADMIN], volumes: ["/:/host:ro", "data:/data"]}
          c: {image: nginx, volumes: ["/srv/app:/app"]}
        volumes:
          data: {}
        """
    spec = load_stack("app", ComposeFile("docker-compose.yml", textwrap.dedent(text)), None, answers={}, env_files={})
    with pytest.raises(PolicyRefused) as info:
        enforce(spec, LOCKED, "prod")
    error = info.value
    assert isinstance(error, InvalidInput) and error.status == 422
    assert [(f.service, f.setting) for f in error.findings] == [
        ("a", "privileged"),
        ("a", "host_network"),
        ("b", "cap_add"),
        ("b", "system_mounts"),
    ]
    body = error.to_dict()
    assert body["error"] == "policy" and len(body["violations"]) == 4
    assert 'service "b": volumes: / (a system path)' in body["message"]


def test_allowed_fields_become_warnings() -> None:
    spec = compose("privileged: true\nvolumes: ['/etc/ssl:/certs:ro']")
    result = enforce(spec, ContainerPolicy(frozenset({"privileged", "system_mounts"})), "demo")
    assert result.services == spec.services
    notes = result.warnings[len(spec.warnings) :]
    assert notes == (
        'service "web": privileged: true is allowed by setting privileged of environment "demo": '
        "a privileged container has every capability and device of its host",
        'service "web": volumes: /etc/ssl (a system path) is allowed by setting system_mounts of environment "demo": '
        "the container reaches the host's system files or its Docker engine",
    )
    assert enforce(compose("cap_drop: [ALL]"), LOCKED, "prod") == compose("cap_drop: [ALL]")


@pytest.mark.parametrize(
    "path",
    [
        "/", "//", "/etc", "/etc/", "/etc/passwd", "/var/run/docker.sock", "/run/docker.sock", "/run",
        "/var/run", "/var", "/var/lib", "/var/lib/docker/volumes", "/srv/../etc", "/home/../proc/1", "/sys/fs",
        "/dev/sda", "/boot", "/root/.ssh", "/usr/bin", "/lib64", "/lib/modules", "/bin", "/sbin",
        "/var/lib/corral/registry.key", "/tmp/x/../../etc/shadow", "//etc//", "/./proc",
    ],
)  # fmt: skip
def test_system_paths(path: str) -> None:
    assert is_system_path(path)
    assert [f.setting for f in violations(bind(path), LOCKED)] == ["system_mounts"]


@pytest.mark.parametrize(
    "path", ["/srv/data", "/home/me/app", "/tmp/cache", "/opt/app", "/library", "/etcetera", "/var/log/app", "/data"]
)
def test_ordinary_paths(path: str) -> None:
    assert not is_system_path(path)
    assert violations(bind(path), LOCKED) == []


def test_the_servers_data_dir_is_protected() -> None:
    policy = ContainerPolicy(frozenset(), protected_paths=("/srv/corral-data/",))
    assert [f.setting for f in violations(bind("/srv/corral-data/admin.env"), policy)] == ["system_mounts"]
    assert [f.setting for f in violations(bind("/srv"), policy)] == ["system_mounts"]
    assert violations(bind("/srv/other"), policy) == []


def test_named_and_anonymous_volumes_are_not_bind_mounts() -> None:
    assert findings(compose("volumes: ['etc:/etc', '/var/run/docker.sock']")) == []


def test_settings_are_parsed_and_checked() -> None:
    assert parse_settings(["privileged,host-network", " cap_add "]) == {"privileged", "host_network", "cap_add"}
    assert parse_settings(["privileged", "all"]) == {ALL}
    assert parse_settings([]) == frozenset()
    with pytest.raises(InvalidInput, match=r"'root' is not a container setting \(known: privileged, cap_add"):
        parse_settings(["privileged,root"])
    assert ContainerPolicy(frozenset({"system_mounts", "privileged"})).names() == ["privileged", "system_mounts"]
    assert ContainerPolicy(frozenset({ALL})).names() == [ALL]


def test_every_compose_key_that_reaches_docker_is_checked() -> None:
    """A guarded key (pid, ipc, devices, ...) that compose starts keeping must get its rule here first."""
    assert SUPPORTED_KEYS & GUARDED_COMPOSE_KEYS <= CHECKED_COMPOSE_KEYS
    assert CHECKED_COMPOSE_KEYS <= SUPPORTED_KEYS


def test_every_setting_has_a_dangerous_compose_example() -> None:
    assert set(DANGEROUS) == set(SETTINGS)


@pytest.mark.parametrize("body", ["userns_mode: host", "uts: host"])
def test_ignored_host_keys_never_reach_the_launch_config(body: str) -> None:
    spec = compose(body)
    assert spec.services[0].launch == LaunchConfig(image="nginx")
    assert any("is not supported yet and was ignored" in w for w in spec.warnings)


def test_pid_ipc_and_devices_are_kept_for_the_engine() -> None:
    spec = compose("pid: host\nipc: shareable\ndevices: ['/dev/kvm', '/dev/sda:/dev/xvda:r']\n")
    launch = spec.services[0].launch
    assert (launch.pid, launch.ipc, launch.devices) == (
        "host",
        "shareable",
        ("/dev/kvm:/dev/kvm:rwm", "/dev/sda:/dev/xvda:r"),
    )
    assert LaunchConfig.from_dict(launch.to_dict()) == launch
    assert [f.setting for f in violations(spec, LOCKED)] == ["host_pid", "devices"]  # ipc shareable is not the host's


def test_launch_configs_without_the_new_keys_keep_their_hash() -> None:
    launch = LaunchConfig(image="nginx")
    assert {"pid", "ipc", "devices"}.isdisjoint(launch.to_dict())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("pid: service:db", "'service:db' is not supported: Corral names and places containers itself"),
        ("ipc: container:x", "'container:x' is not supported"),
        ("pid: private", "'private' is not a valid mode (known: host)"),
        ("ipc: hots", "'hots' is not a valid mode (known: host, private, shareable, none)"),
        ("devices: ['dev/kvm']", "device path 'dev/kvm' must be absolute"),
        ("devices: ['/dev/kvm:/dev/kvm:rx']", "permissions 'rx' must be letters of 'rwm'"),
        ("devices: ['/a:/b:r:w']", "is not HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]"),
        ("devices: /dev/kvm", "devices"),
    ],
)
def test_bad_pid_ipc_and_devices_name_the_service_and_field(body: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compose(body)
    assert reason in str(caught.value)
    assert "web" in str(caught.value)
    assert body.split(":")[0] in str(caught.value)


# -- properties --------------------------------------------------------------------------------------------------

_paths = st.lists(
    st.sampled_from(["", ".", "..", "etc", "var", "run", "lib", "srv", "docker.sock", "data"]), max_size=5
)


@st.composite
def launches(draw: st.DrawFn) -> LaunchConfig:
    volumes = tuple(
        VolumeSpec(kind="bind", target=f"/m{i}", source="/" + "/".join(parts))
        for i, parts in enumerate(draw(st.lists(_paths, max_size=3)))
    )
    return LaunchConfig(
        image="nginx",
        privileged=draw(st.booleans()),
        cap_add=tuple(draw(st.lists(st.sampled_from(["NET_ADMIN", "SYS_ADMIN"]), max_size=2))),
        network_mode=draw(st.sampled_from(["managed", "host", "bridge", "none", "service:db"])),
        volumes=volumes,
        pid=draw(st.sampled_from(["", "host"])),
        ipc=draw(st.sampled_from(["", "host", "private"])),
        devices=tuple(draw(st.lists(st.sampled_from(["/dev/kvm:/dev/kvm:rwm", "/dev/fuse:/dev/fuse:r"]), max_size=2))),
    )


stacks = st.lists(launches(), min_size=1, max_size=4).map(
    lambda ls: StackSpec("app", tuple(ServiceSpec(f"s{i}", launch) for i, launch in enumerate(ls)))
)
policies = st.frozensets(st.sampled_from([*SETTINGS, ALL])).map(ContainerPolicy)


@given(stacks)
def test_a_policy_allowing_everything_never_refuses(spec: StackSpec) -> None:
    assert violations(spec, OPEN) == []
    assert violations(spec, ContainerPolicy(frozenset(SETTINGS))) == []
    assert len(enforce(spec, OPEN, "e").warnings) == len(findings(spec))


@given(stacks, policies)
def test_violations_are_exactly_the_findings_not_allowed(spec: StackSpec, policy: ContainerPolicy) -> None:
    refused = violations(spec, policy)
    assert refused == [f for f in findings(spec) if not policy.allows(f.setting)]
    assert violations(spec, LOCKED) == findings(spec)
    wider = ContainerPolicy(policy.allowed | {SETTINGS[0]})
    assert set(violations(spec, wider)) <= set(refused)  # allowing more never refuses more


@given(launches(), st.sampled_from(SETTINGS))
def test_each_setting_alone_allows_exactly_its_fields(launch: LaunchConfig, setting: str) -> None:
    spec = StackSpec("app", (ServiceSpec("web", launch),))
    left = violations(spec, ContainerPolicy(frozenset({setting})))
    assert all(f.setting != setting for f in left)
    assert {f.setting for f in left} == {f.setting for f in findings(spec)} - {setting}


@given(_paths)
def test_normalising_is_idempotent_and_absolute(parts: list[str]) -> None:
    path = normalise_path("/" + "/".join(parts) + "/")
    assert path.startswith("/") and not path.startswith("//") and (path == "/" or not path.endswith("/"))
    assert normalise_path(path) == path
    assert ".." not in path.split("/")
