"""One docker-compose service key at a time: what it becomes in the LaunchConfig / ServiceSpec."""

from __future__ import annotations

import json

import pytest

from corral.compose.service import SUPPORTED_KEYS
from corral.model.builds import PLACEHOLDER_IMAGE
from corral.model.health import DockerHealthcheck, HealthCheck
from corral.model.stack import LaunchConfig, ServiceSpec

from .helpers import DC, launch, service, service_error, stack, warnings_of


def test_minimal_service_defaults() -> None:
    spec = service("image: nginx\n")
    assert spec.launch == LaunchConfig(image="nginx")
    assert (spec.scale, spec.depends_on, spec.start_on_create, spec.health_check) == (1, (), True, None)
    assert (spec.upgrade_strategy, spec.retain_ip, spec.metadata) == (None, False, {})


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25-alpine",
        "library/nginx",
        "registry.example.com:5000/team/app:v1.2.3",
        "localhost/app",
        "[::1]:5000/app:tag",
        "ghcr.io/org/app@sha256:" + "a" * 64,
        "app:tag@sha256:" + "0" * 64,
        "rancher/network-manager:v0.7.15",  # (rancher/lb-service-haproxy runs as corral/haproxy: test_lb_config)
        "my_app__x/sub-part.name",
    ],
)
def test_valid_image_references(image: str) -> None:
    assert launch("", answers=None).image == "nginx"  # sanity of the helper
    assert service(f"image: '{image}'\n").launch.image == image


@pytest.mark.parametrize("image", ["Nginx", "nginx:", "ngi nx", "nginx:tag:tag", "-nginx", "nginx@sha256:abc", ""])
def test_invalid_image_references(image: str) -> None:
    exc = service_error(f"image: '{image}'\n")
    assert exc.field == f"{DC}:services.web.image"
    assert "service web: image:" in exc.message


def test_missing_image_is_an_error_naming_the_field() -> None:
    exc = service_error("command: echo\n")
    assert exc.field == f"{DC}:services.web.image"
    assert exc.message == f"{DC}: service web: image: is required (every service needs an image or a build)"


def test_build_without_image_gets_a_placeholder_until_the_server_names_the_built_image() -> None:
    assert service("build: .\n").launch.image == PLACEHOLDER_IMAGE  # compose/build.py attach_builds replaces it
    assert warnings_of("image: nginx\nbuild: .\n") == ()  # the build wins; no warning


def test_extends_of_a_missing_service_is_an_error() -> None:
    exc = service_error("image: nginx\nextends:\n  service: base\n")
    assert "extends names service 'base', which is not defined" in exc.message
    assert exc.field == f"{DC}:services.web.extends.service"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("echo hello", ("echo", "hello")),
        ("sh -c 'echo \"a b\"; exit 1'", ("sh", "-c", 'echo "a b"; exit 1')),
        ("[echo, 'a b', 3]", ("echo", "a b", "3")),
        ("''", ()),
        ("[]", ()),
        ("~", None),
    ],
)
def test_command_and_entrypoint(value: str, expected: tuple[str, ...] | None) -> None:
    config = launch(f"command: {value}\nentrypoint: {value}\n")
    assert config.command == expected
    assert config.entrypoint == expected


def test_command_with_unbalanced_quotes_and_wrong_type_are_errors() -> None:
    exc = service_error("image: nginx\ncommand: echo 'oops\n")
    assert exc.field == f"{DC}:services.web.command"
    assert "cannot split" in exc.message
    exc = service_error("image: nginx\nentrypoint: {a: b}\n")
    assert exc.field == f"{DC}:services.web.entrypoint"


def test_environment_map_form_with_types() -> None:
    config = launch(
        """
        environment:
          STR: text
          INT: 5
          FLOAT: 1.5
          BOOL: true
          NO_VALUE:
          FROM_ANSWERS:
          QUOTED: "yes"
        """,
        answers={"FROM_ANSWERS": "answered"},
    )
    assert config.environment == (
        ("BOOL", "true"),
        ("FLOAT", "1.5"),
        ("FROM_ANSWERS", "answered"),
        ("INT", "5"),
        ("QUOTED", "yes"),
        ("STR", "text"),
    )


def test_environment_list_form() -> None:
    config = launch(
        """
        environment:
          - B=2
          - A=x=y
          - EMPTY=
          - BARE
          - FROM_ANSWERS
        """,
        answers={"FROM_ANSWERS": "v"},
    )
    # BARE has no value anywhere: left unset, as Compose leaves it (never "")
    assert config.environment == (("A", "x=y"), ("B", "2"), ("EMPTY", ""), ("FROM_ANSWERS", "v"))


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("environment: 5\n", "services.web.environment", "must be a list of KEY=VALUE strings or a mapping"),
        ("environment: [A=1, A=2]\n", "services.web.environment[1]", "'A' is set twice"),
        ("environment: ['=x']\n", "services.web.environment[0]", "must look like KEY=VALUE"),
        ("environment: [[a]]\n", "services.web.environment[0]", "must be a string"),
        ("environment:\n  A: [1]\n", "services.web.environment.A", "must be a string, number or boolean"),
    ],
)
def test_environment_errors(body: str, field: str, reason: str) -> None:
    exc = service_error("image: nginx\n" + body)
    assert exc.field == f"{DC}:{field}"
    assert reason in exc.message


def test_labels_list_and_map_and_deploy_labels_stay_off_the_containers() -> None:
    spec = service(
        """
        image: nginx
        labels:
          io.rancher.scheduler.global: 'true'
          b: 2
          shared: from-labels
        deploy:
          labels: [shared=from-deploy, d=4]
        """
    )
    assert spec.launch.labels == (("b", "2"), ("io.rancher.scheduler.global", "true"), ("shared", "from-labels"))
    assert (
        f"{DC}: service web: deploy.labels label the Swarm service, not its containers, and were ignored "
        "(use labels)" in warnings_of("image: nginx\ndeploy:\n  labels: [d=4]\n")
    )
    assert launch("labels: [a=1, flag]\n").labels == (("a", "1"), ("flag", ""))


def test_corral_labels_are_reserved() -> None:
    exc = service_error("image: nginx\nlabels:\n  io.corral.container: x\n")
    assert exc.field == f"{DC}:services.web.labels.io.corral.container"
    assert "reserved" in exc.message


def test_user_facing_corral_labels_are_the_twins_of_rancher_ones() -> None:
    labels = (
        "labels:\n  io.corral.scheduler.global: 'true'\n  io.corral.container.start_once: 'true'\n"
        "  io.corral.container.pull_image: always\n"
    )
    assert dict(launch(labels).labels) == {
        "io.corral.scheduler.global": "true",
        "io.corral.container.start_once": "true",
        "io.corral.container.pull_image": "always",
    }
    exc = service_error("image: nginx\nlabels:\n  io.corral.config-hash: x\n")
    assert "reserved" in exc.message


def test_labels_of_wrong_type() -> None:
    exc = service_error("image: nginx\nlabels: text\n")
    assert exc.field == f"{DC}:services.web.labels"


def test_simple_string_keys() -> None:
    config = launch("working_dir: /app\nuser: 1000\nhostname: web1\n")
    assert (config.working_dir, config.user, config.hostname) == ("/app", "1000", "web1")
    assert launch("user: 'www-data:www-data'\n").user == "www-data:www-data"
    exc = service_error("image: nginx\nworking_dir: app\n")
    assert exc.field == f"{DC}:services.web.working_dir"
    assert "absolute" in exc.message
    assert service_error("image: nginx\nhostname: [a]\n").field == f"{DC}:services.web.hostname"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("no", "no"), ("'no'", "no"), ("false", "no"), ("always", "always"), ("on-failure", "on-failure"),
     ("on-failure:5", "on-failure"), ("unless-stopped", "unless-stopped")],
)  # fmt: skip
def test_restart(value: str, expected: str) -> None:
    assert launch(f"restart: {value}\n").restart == expected


def test_restart_retry_count_warns_and_bad_values_fail() -> None:
    assert warnings_of("image: nginx\nrestart: on-failure:3\n") == (
        f"{DC}: service web: restart: the retry count in 'on-failure:3' is not supported yet and was ignored",
    )
    exc = service_error("image: nginx\nrestart: sometimes\n")
    assert exc.field == f"{DC}:services.web.restart"
    assert "must be no, always, on-failure[:N] or unless-stopped" in exc.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("2", 2.0), ("1.5s", 1.5), ("'0'", 0.0),
     ("1m0.5s", 60.5), ("100us", 0.0001)],
)  # fmt: skip
def test_stop_grace_period(value: str, seconds: float) -> None:
    assert launch(f"stop_grace_period: {value}\n").stop_grace_seconds == seconds


@pytest.mark.parametrize("value", ["ten", "10x", "s", "-1s", "1s2", "[1]", "true"])
def test_bad_durations(value: str) -> None:
    exc = service_error(f"image: nginx\nstop_grace_period: {value}\n")
    assert exc.field == f"{DC}:services.web.stop_grace_period"


def test_capabilities_and_flags() -> None:
    config = launch(
        """
        cap_add: [NET_ADMIN, SYS_TIME]
        cap_drop: [ALL]
        privileged: true
        tty: 'true'
        stdin_open: yes
        """
    )
    assert (config.cap_add, config.cap_drop) == (("NET_ADMIN", "SYS_TIME"), ("ALL",))
    assert (config.privileged, config.tty, config.stdin_open) == (True, True, True)
    assert service_error("image: nginx\ncap_add: NET_ADMIN\n").field == f"{DC}:services.web.cap_add"
    exc = service_error("image: nginx\nprivileged: maybe\n")
    assert exc.field == f"{DC}:services.web.privileged"
    assert "must be true or false" in exc.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("512m", 512 * 1024**2), ("1g", 1024**3), ("1GB", 1024**3), ("1.5g", int(1.5 * 1024**3)), ("100k", 102400),
     ("2048", 2048), ("'2048'", 2048), ("0", None), ("256MiB", 256 * 1024**2), ("10b", 10)],
)  # fmt: skip
def test_mem_limit(value: str, expected: int | None) -> None:
    assert launch(f"mem_limit: {value}\n").mem_limit_bytes == expected


@pytest.mark.parametrize("value", ["lots", "1q", "-5", "1.5", "[1]"])
def test_bad_mem_limit(value: str) -> None:
    exc = service_error(f"image: nginx\nmem_limit: {value}\n")
    assert exc.field == f"{DC}:services.web.mem_limit"


def test_cpus() -> None:
    assert launch("cpus: 1.5\n").cpus == 1.5
    assert launch("cpus: '2'\n").cpus == 2.0
    assert service_error("image: nginx\ncpus: 0\n").field == f"{DC}:services.web.cpus"
    assert service_error("image: nginx\ncpus: many\n").field == f"{DC}:services.web.cpus"


def test_deploy_replicas_labels_and_limits() -> None:
    spec = service(
        """
        image: nginx
        mem_limit: 1g
        cpus: 4
        deploy:
          replicas: 3
          resources:
            limits:
              memory: 256m
              cpus: '0.5'
        """
    )
    assert spec.scale == 3
    assert (spec.launch.mem_limit_bytes, spec.launch.cpus) == (256 * 1024**2, 0.5)


def test_deploy_mode_global_is_cattle_global_scheduling() -> None:
    spec = service(
        """
        image: nginx
        deploy:
          mode: global
        """
    )
    assert ("io.rancher.scheduler.global", "true") in spec.launch.labels


def test_deploy_unsupported_parts_warn() -> None:
    warnings = warnings_of(
        """
        image: nginx
        deploy:
          mode: global
          placement: {constraints: [node.role == manager]}
          restart_policy: {condition: on-failure}
          update_config: {parallelism: 2}
          resources:
            reservations: {memory: 10m, devices: []}
            limits: {pids: 10}
        """
    )
    assert warnings == (
        f"{DC}: service web: key 'deploy.placement' is not supported yet and was ignored",
        f"{DC}: service web: key 'deploy.restart_policy' is not supported yet and was ignored",
        f"{DC}: service web: key 'deploy.update_config' is not supported yet and was ignored",
        f"{DC}: service web: key 'deploy.resources.reservations.devices' is not supported yet and was ignored",
        f"{DC}: service web: key 'deploy.resources.limits.pids' is not supported yet and was ignored",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("deploy:\n  replica: 3\n", "services.web.deploy.replica"),
        ("deploy:\n  replicas: x\n", "services.web.deploy.replicas"),
        ("deploy:\n  replicas: 1001\n", "services.web.deploy.replicas"),
        ("deploy:\n  mode: everywhere\n", "services.web.deploy.mode"),
        ("deploy:\n  resources: {limit: {}}\n", "services.web.deploy.resources.limit"),
        ("deploy:\n  resources: {limits: {memory: x}}\n", "services.web.deploy.resources.limits.memory"),
        ("deploy: 3\n", "services.web.deploy"),
    ],
)
def test_deploy_errors(body: str, field: str) -> None:
    assert service_error("image: nginx\n" + body).field == f"{DC}:{field}"


def test_service_level_scale_key_is_used_below_deploy_replicas() -> None:
    assert service("image: nginx\nscale: 2\n").scale == 2
    assert service("image: nginx\nscale: 2\ndeploy: {replicas: 5}\n").scale == 5
    assert service_error("image: nginx\nscale: -1\n").field == f"{DC}:services.web.scale"


def test_healthcheck_is_normalised_to_seconds() -> None:
    spec = service(
        """
        image: nginx
        healthcheck:
          test: curl -f http://localhost/
          interval: 1m30s
          timeout: 10s
          retries: 3
          start_period: 40s
        """
    )
    assert spec.launch.healthcheck == DockerHealthcheck(
        test=("CMD-SHELL", "curl -f http://localhost/"),
        interval_seconds=90.0,
        timeout_seconds=10.0,
        retries=3,
        start_period_seconds=40.0,
    )
    # The service's check (milliseconds): Docker runs the command, the agent reports Docker's status.
    assert spec.health() == HealthCheck(
        interval_ms=90000, response_timeout_ms=10000, unhealthy_threshold=3, initializing_timeout_ms=40000, command=True
    )
    assert LaunchConfig.from_dict(spec.launch.to_dict()) == spec.launch
    simple = service("image: nginx\nhealthcheck:\n  test: [CMD, true]\n")
    assert simple.launch.healthcheck == DockerHealthcheck(test=("CMD", "true"))
    assert simple.health() == HealthCheck(command=True)
    disabled = service("image: nginx\nhealthcheck:\n  disable: true\n")
    assert (disabled.launch.healthcheck, disabled.health()) == (DockerHealthcheck(test=("NONE",)), None)
    timing_only = service("image: nginx\nhealthcheck:\n  interval: 5s\n")
    assert (timing_only.launch.healthcheck, timing_only.health()) == (DockerHealthcheck(interval_seconds=5.0), None)
    assert "healthcheck" not in service("image: nginx\n").launch.to_dict()  # config hashes of others unchanged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("healthcheck:\n  test: [curl, x]\n", "services.web.healthcheck.test"),
        ("healthcheck:\n  test: [CMD]\n", "services.web.healthcheck.test"),
        ("healthcheck:\n  test: ''\n", "services.web.healthcheck.test"),
        ("healthcheck:\n  retries: x\n", "services.web.healthcheck.retries"),
        ("healthcheck:\n  interval: soon\n", "services.web.healthcheck.interval"),
        ("healthcheck:\n  intervall: 5s\n", "services.web.healthcheck.intervall"),
    ],
)
def test_healthcheck_errors(body: str, field: str) -> None:
    assert service_error("image: nginx\n" + body).field == f"{DC}:{field}"


def test_container_name_warns_at_scale_1_and_is_refused_above() -> None:
    assert warnings_of("image: nginx\ncontainer_name: my-web\n") == (
        f"{DC}: service web: container_name: the container is named by Corral; 'web' reaches it by DNS, "
        "and 'my-web' was not used",
    )
    exc = service_error("image: nginx\ncontainer_name: my-web\nscale: 2\n")
    assert exc.field == f"{DC}:services.web.container_name"
    assert "cannot run 2 containers named 'my-web'" in exc.message


@pytest.mark.parametrize(
    "key",
    ["logging", "dns", "sysctls",
     "security_opt",
     "log_driver"],
)  # fmt: skip
def test_known_unsupported_keys_warn_naming_file_service_and_key(key: str) -> None:
    assert warnings_of(f"image: nginx\n{key}: {{}}\n") == (
        f"{DC}: service web: key '{key}' is not supported yet and was ignored",
    )


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    exc = service_error("imagee: nginx\n")
    assert exc.field == f"{DC}:services.web.imagee"
    assert exc.message == f"{DC}: service web: imagee: unknown key 'imagee' (did you mean 'image'?)"
    exc = service_error("image: nginx\nfrobnicate: 1\n")
    assert exc.message == f"{DC}: service web: frobnicate: unknown key 'frobnicate'"


def test_service_extension_keys_are_ignored_silently() -> None:
    assert warnings_of("image: nginx\nx-notes: anything\n") == ()


def test_service_body_must_be_a_mapping() -> None:
    exc = stack_error_text("version: '2'\nservices:\n  web: nginx\n")
    assert exc == (f"{DC}: service web: must be a mapping, not a string", f"{DC}:services.web")
    exc = stack_error_text("version: '2'\nservices:\n  web:\n")
    assert exc == (f"{DC}: service web: must be a mapping, not null", f"{DC}:services.web")


def stack_error_text(text: str) -> tuple[str, str | None]:
    from .helpers import error

    exc = error(text)
    return exc.message, exc.field


def test_network_mode_values() -> None:
    assert launch("").network_mode == "managed"
    for mode in ("host", "bridge", "none", "container:other"):
        assert launch(f"network_mode: '{mode}'\n").network_mode == mode
    assert launch("network_mode: default\n").network_mode == "managed"
    spec = stack(
        """
        version: '2'
        services:
          web: {image: nginx, network_mode: 'service:side', labels: {io.rancher.sidekicks: side}}
          side: {image: busybox}
        """
    )
    assert spec.service("web").launch.network_mode == "service:side"  # type: ignore[union-attr]
    assert stack("web: {image: nginx, net: host}\n").services[0].launch.network_mode == "host"


def test_network_mode_errors() -> None:
    exc = service_error("image: nginx\nnetwork_mode: overlay\n")
    assert exc.field == f"{DC}:services.web.network_mode"
    assert "must be host, bridge, none, container:NAME or service:NAME" in exc.message
    exc = service_error("image: nginx\nnetwork_mode: 'service:ghost'\n")
    assert exc.field == f"{DC}:services.web.network_mode"
    assert "network_mode names service 'ghost', which is not defined in docker-compose.yml" in exc.message
    exc = service_error("image: nginx\nnetwork_mode: host\nnet: host\n")
    assert exc.field == f"{DC}:services.web.net"


def test_links_are_kept_and_checked() -> None:
    spec = stack(
        """
        version: '2'
        services:
          web: {image: nginx, links: [db, 'cache:redis']}
          db: {image: postgres}
          cache: {image: redis}
        """
    )
    web = spec.service("web")
    assert web is not None
    assert web.launch.links == ("db", "cache:redis")
    assert web.depends_on == ("cache", "db")  # links order start-up, as in Compose
    exc = service_error("image: nginx\nlinks: [ghost]\n")
    assert exc.field == f"{DC}:services.web.links[0]"
    assert exc.message == (
        f"{DC}: service web: links[0]: links names service 'ghost', which is not defined in docker-compose.yml"
    )
    assert service_error("image: nginx\nlinks: ['a:']\n").field == f"{DC}:services.web.links[0]"


def test_external_links_are_kept_and_checked() -> None:
    assert launch("external_links: [blog/web, 'shop/db:database']\n").external_links == ("blog/web", "shop/db:database")
    assert "external_links" not in launch("").to_dict()  # config hashes of existing services do not change
    for bad in ("blog/", "/web", "blog/web:", "a/b/c", "db:"):
        exc = service_error(f"image: nginx\nexternal_links: ['{bad}']\n")
        assert exc.field == f"{DC}:services.web.external_links[0]", bad
        assert "must be [STACK/]SERVICE or [STACK/]SERVICE:ALIAS" in exc.message


def test_external_links_without_a_stack_mean_this_stack() -> None:
    # Real catalogs (artifactory-oss) write `external_links: [artifactory:artifactory]` for a same-stack service.
    web = stack("version: '2'\nservices:\n  web:\n    image: nginx\n    external_links: ['db:database', cache]\n")
    service = web.service("web")
    assert service is not None
    assert service.launch.external_links == (f"{web.name}/db:database", f"{web.name}/cache")


def test_depends_on_list_and_map_forms() -> None:
    spec = stack(
        """
        version: '2.1'
        services:
          web:
            image: nginx
            depends_on:
              db: {condition: service_healthy}
              cache: {condition: service_started}
          db: {image: postgres}
          cache: {image: redis}
          worker: {image: app, depends_on: [db, db]}
        """
    )
    assert spec.service("web").depends_on == ("cache", "db")  # type: ignore[union-attr]
    assert spec.service("worker").depends_on == ("db",)  # type: ignore[union-attr]
    assert spec.service("web").depends_conditions == (("db", "service_healthy"),)  # type: ignore[union-attr]
    assert spec.warnings == (
        f"{DC}: service db: services wait for it to be healthy (depends_on condition service_healthy) but it has "
        "no healthcheck; they wait until its image's HEALTHCHECK passes",
    )


def test_depends_on_conditions_are_kept_and_a_completed_dependency_runs_once() -> None:
    spec = stack(
        """
        services:
          web:
            image: nginx
            depends_on:
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
              Cache: {condition: service_started}
          db:
            image: postgres
            healthcheck: {test: ["CMD", "pg_isready"]}
          migrate: {image: app, command: ["migrate"]}
          Cache: {image: redis}
          seed: {image: app, restart: always}
          late: {image: app, depends_on: {seed: {condition: service_completed_successfully}}}
        """
    )
    web, migrate, seed = (spec.service(n) for n in ("web", "migrate", "seed"))
    assert web is not None and migrate is not None and seed is not None
    assert web.depends_on == ("cache", "db", "migrate")
    assert web.depends_conditions == (("db", "service_healthy"), ("migrate", "service_completed_successfully"))
    assert migrate.launch.run_once and not seed.launch.run_once
    assert not any(s.launch.run_once for s in spec.services if s.name not in ("migrate",))
    assert any("service seed: services wait for it to complete" in w and "restart 'always'" in w for w in spec.warnings)
    again = ServiceSpec.from_dict(json.loads(json.dumps(web.to_dict())))
    assert again == web
    assert "depends_conditions" not in spec.service("db").to_dict()  # type: ignore[union-attr]
    assert "run_once" not in spec.service("db").launch.to_dict()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("depends_on: [ghost]\n", "services.web.depends_on[0]"),
        ("depends_on: {ghost: {}}\n", "services.web.depends_on.ghost"),
        ("depends_on: {web: {condition: service_ready}}\n", "services.web.depends_on.web.condition"),
        ("depends_on: {web: {when: now}}\n", "services.web.depends_on.web.when"),
        ("depends_on: web\n", "services.web.depends_on"),
    ],
)
def test_depends_on_errors(body: str, field: str) -> None:
    assert service_error("image: nginx\n" + body).field == f"{DC}:{field}"


def test_expose() -> None:
    assert launch("expose: [80, '443', '8000-8010', 53/udp, 9090/tcp]\n").expose == (
        "80",
        "443",
        "8000-8010",
        "53/udp",
        "9090",
    )
    assert service_error("image: nginx\nexpose: [http]\n").field == f"{DC}:services.web.expose[0]"
    assert service_error("image: nginx\nexpose: [70000]\n").field == f"{DC}:services.web.expose[0]"


@pytest.mark.parametrize("key", sorted(SUPPORTED_KEYS - {"image"}))
def test_null_values_mean_not_set(key: str) -> None:
    assert service(f"image: nginx\n{key}:\n").launch.image == "nginx"
    assert service(f"image: nginx\ndeploy:\n  {'mode' if key != 'deploy' else 'labels'}:\n").scale == 1


def test_reservations_for_the_scheduler() -> None:
    spec = service("image: nginx\nmem_reservation: 512m\nmilli_cpu_reservation: 1500\n")
    assert (spec.mem_reservation_bytes, spec.cpu_reservation) == (512 * 1024**2, 1.5)
    assert spec.launch.mem_limit_bytes is None and spec.launch.cpus is None
    assert ServiceSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    old = {k: v for k, v in spec.to_dict().items() if k not in ("mem_reservation_bytes", "cpu_reservation")}
    assert ServiceSpec.from_dict(old).mem_reservation_bytes is None  # specs stored before reservations still load
    spec = service(
        """
        image: nginx
        mem_reservation: 1g
        deploy:
          resources:
            reservations: {memory: 256M, cpus: '0.25'}
        """
    )
    assert (spec.mem_reservation_bytes, spec.cpu_reservation) == (256 * 1024**2, 0.25)
    spec = service("image: nginx\n")
    assert (spec.mem_reservation_bytes, spec.cpu_reservation) == (None, None)
    assert service("image: nginx\nmilli_cpu_reservation: 0\n").cpu_reservation is None


def test_rancher_compose_reservations_win() -> None:
    spec = stack(
        "version: '2'\nservices:\n  web:\n    image: nginx\n    mem_reservation: 1g\n",
        "version: '2'\nservices:\n  web:\n    milli_cpu_reservation: 250\n    mem_reservation: 64m\n",
    ).service("web")
    assert spec is not None
    assert (spec.mem_reservation_bytes, spec.cpu_reservation) == (64 * 1024**2, 0.25)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("mem_reservation: lots\n", "services.web.mem_reservation"),
        ("milli_cpu_reservation: -5\n", "services.web.milli_cpu_reservation"),
        ("deploy: {resources: {reservations: {cpu: 1}}}\n", "services.web.deploy.resources.reservations.cpu"),
        ("deploy: {resources: {reservations: {cpus: -1}}}\n", "services.web.deploy.resources.reservations.cpus"),
    ],
)
def test_reservation_errors(body: str, field: str) -> None:
    assert service_error("image: nginx\n" + body).field == f"{DC}:{field}"
