"""File layouts (v1, v2.x, v3.x, compose spec), stack-level validation, start order and the rancher-compose merge."""

from __future__ import annotations

import pytest

from corral.model.health import HealthCheck

from .helpers import DC, RC, error, stack

V1 = "web:\n  image: nginx\ndb:\n  image: postgres\n"


@pytest.mark.parametrize(
    "text",
    [
        V1,
        "version: '2'\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: 2\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: '2.1'\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: 2.4\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: '3'\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: '3.8'\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "services:\n  web: {image: nginx}\n  db: {image: postgres}\n",
        "version: '3.9'\nservices:\n  web: {image: nginx}\n  db: {image: postgres}\nvolumes: {}\nnetworks: {}\n",
    ],
)
def test_every_format_gives_the_same_services(text: str) -> None:
    spec = stack(text)
    assert [s.name for s in spec.services] == ["db", "web"]
    assert spec.name == "app"
    assert spec.warnings == ()


@pytest.mark.parametrize("version", ["'1'", "'4'", "'2.x'", "latest", "[2]"])
def test_unsupported_versions(version: str) -> None:
    exc = error(f"version: {version}\nservices:\n  web: {{image: nginx}}\n")
    assert exc.field == f"{DC}:version"
    assert "unsupported version" in exc.message


def test_unknown_top_level_key_is_an_error() -> None:
    exc = error("version: '3'\nservices:\n  web: {image: nginx}\nservice:\n  db: {image: postgres}\n")
    assert exc.field == f"{DC}:service"
    assert "unknown top-level key 'service'" in exc.message


def test_unsupported_top_level_keys_warn() -> None:
    spec = stack(
        """
        version: '3.8'
        name: myproject
        services:
          web: {image: nginx}
        networks:
          front: {}
        secrets:
          token: {file: ./token}
        x-anything: {a: 1}
        """
    )
    assert spec.warnings == (
        f"{DC}: top-level key 'name' was ignored: the stack is named 'app'",
    )  # `secrets` (compose/files.py) and `networks` (compose/networks.py) are supported


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        ("", f"{DC}: the file is empty", DC),
        ("# only a comment\n", f"{DC}: the file is empty", DC),
        ("- web\n", f"{DC}: the top level must be a mapping, not a list", DC),
        ("version: '2'\nservices: {}\n", f"{DC}: services: no services are defined", f"{DC}:services"),
        ("version: '2'\nservices:\n", f"{DC}: services: no services are defined", f"{DC}:services"),
        ("version: '2'\n", f"{DC}: services: no services are defined", f"{DC}:services"),
        ("{}\n", f"{DC}: no services are defined", DC),
        ("version: '2'\nservices: [web]\n", f"{DC}: services: must be a mapping, not a list", f"{DC}:services"),
    ],
)
def test_empty_and_malformed_files(text: str, message: str, field: str) -> None:
    exc = error(text)
    assert (exc.message, exc.field) == (message, field)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("my_web", "my-web"), ("-web", "web"), ("web-", "web"), ("a" * 64, "a" * 63), ("web.1", "web-1"),
     ("x__", "x")],
)  # fmt: skip
def test_invalid_service_names_suggest_a_valid_one(name: str, suggestion: str) -> None:
    exc = error(f"version: '2'\nservices:\n  '{name}': {{image: nginx}}\n")
    assert exc.field == f"{DC}:services.{name}"
    assert f"service name {name!r} is not valid" in exc.message
    assert f"(for example {suggestion!r})" in exc.message


def test_numeric_service_names_are_text() -> None:
    assert [s.name for s in stack("version: '2'\nservices:\n  2048: {image: game}\n").services] == ["2048"]
    exc = error("version: '2'\nservices:\n  1: {image: a}\n  '1': {image: b}\n")
    assert exc.message == f"{DC}: services.1: '1' is defined twice"
    assert [s.name for s in stack("2048: {image: game}\n").services] == ["2048"]
    exc = error("version: '2'\nservices:\n  1.5: {image: a}\n")
    assert "service name '1.5' is not valid" in exc.message


def test_v1_paths_have_no_services_prefix() -> None:
    exc = error("web:\n  image: nginx\n  ports: [abc]\n")
    assert exc.field == f"{DC}:web.ports[0]"
    assert exc.message.startswith(f"{DC}: service web: ports[0]: ")


def test_start_order_is_topological_with_ties_by_name() -> None:
    spec = stack(
        """
        version: '2'
        services:
          web: {image: nginx, depends_on: [api, cache]}
          api: {image: app, depends_on: [db]}
          worker: {image: app, depends_on: [db, queue]}
          db: {image: postgres}
          queue: {image: rabbitmq}
          cache: {image: redis}
          zeta: {image: busybox}
          alpha: {image: busybox}
        """
    )
    assert [s.name for s in spec.services] == ["alpha", "cache", "db", "api", "queue", "web", "worker", "zeta"]


@pytest.mark.parametrize(
    ("services", "cycle", "field"),
    [
        ("a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n", "a -> b -> a", "services.a.depends_on"),
        ("a: {image: x, depends_on: [a]}\n", "a -> a", "services.a.depends_on"),
        (
            "c: {image: x, depends_on: [a]}\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
            "  d: {image: x, depends_on: [a]}\n",
            "a -> b -> c -> a",
            "services.a.depends_on",
        ),
        (
            "a: {image: x}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [d]}\n"
            "  d: {image: x, depends_on: [b, a]}\n",
            "b -> c -> d -> b",
            "services.b.depends_on",
        ),
    ],
)
def test_dependency_cycles_are_named(services: str, cycle: str, field: str) -> None:
    exc = error("version: '2'\nservices:\n  " + services)
    assert exc.field == f"{DC}:{field}"
    assert exc.message.endswith(f"dependency cycle: {cycle}")


def test_links_cycles_are_allowed() -> None:
    spec = stack("a: {image: x, links: [b]}\nb: {image: x, links: [a]}\n")
    assert [s.name for s in spec.services] == ["a", "b"]


# -- rancher-compose.yml -------------------------------------------------------------------------------------------

COMPOSE = """
version: '3'
services:
  web:
    image: nginx
    deploy: {replicas: 2}
    healthcheck:
      test: [CMD, curl, -f, http://localhost]
      interval: 10s
      retries: 3
  db:
    image: postgres
"""


def test_rancher_v2_layout_merges_service_settings() -> None:
    spec = stack(
        COMPOSE,
        """
        version: '2'
        catalog:
          name: thing
          questions: [{variable: X, type: int}]
        services:
          web:
            scale: 5
            start_on_create: false
            retain_ip: true
            upgrade_strategy: {start_first: 'true', batch_size: '2'}
            metadata:
              config: {a: 1, list: [1, two]}
              1: numeric-key
            health_check:
              port: '80'
              request_line: GET /hc HTTP/1.0
              interval: 2000
              response_timeout: 2000
              healthy_threshold: 2
              unhealthy_threshold: 3
              strategy: recreate
        """,
    )
    web, db = spec.service("web"), spec.service("db")
    assert web is not None and db is not None
    assert (web.scale, web.start_on_create, web.retain_ip) == (5, False, True)
    assert web.upgrade_strategy == {"start_first": True, "batch_size": 2}
    assert web.metadata == {"config": {"a": 1, "list": [1, "two"]}, "1": "numeric-key"}
    assert type(web.metadata["config"]["a"]) is int
    assert web.health() == HealthCheck(
        port=80,
        request_line="GET /hc HTTP/1.0",
        interval_ms=2000,  # rancher-compose wins (its times are milliseconds; compose's 10s would be 10000)
        response_timeout_ms=2000,
        healthy_threshold=2,
        unhealthy_threshold=3,
        strategy="recreate",
        command=True,
    )
    assert (db.scale, db.start_on_create, db.retain_ip, db.health_check, db.metadata) == (1, True, False, None, {})
    assert spec.warnings == ()


def test_rancher_v1_layout_with_dot_catalog() -> None:
    spec = stack(V1, ".catalog:\n  version: 1\nweb:\n  scale: 3\n")
    assert spec.service("web").scale == 3  # type: ignore[union-attr]


def test_scale_precedence_rancher_then_deploy_replicas_then_one() -> None:
    assert stack(COMPOSE).service("web").scale == 2  # type: ignore[union-attr]
    assert stack(COMPOSE, "web: {scale: 0}\n").service("web").scale == 0  # type: ignore[union-attr]
    assert stack(COMPOSE, "web: {retain_ip: true}\n").service("web").scale == 2  # type: ignore[union-attr]


def test_empty_rancher_file_is_fine() -> None:
    assert len(stack(V1, "").services) == 2
    assert len(stack(V1, "version: '2'\n").services) == 2


@pytest.mark.parametrize(
    ("rancher", "field", "reason"),
    [
        ("web: {scale: x}\n", "web.scale", "must be an integer, not 'x'"),
        ("web: {scale: '1001'}\n", "web.scale", "must be between 0 and 1000"),
        ("web: {scale: -1}\n", "web.scale", "must be between 0 and 1000"),
        ("web: {scale: 1.5}\n", "web.scale", "must be an integer"),
        ("web: {retain_ip: sometimes}\n", "web.retain_ip", "must be true or false"),
        ("web: {health_check: {port: http}}\n", "web.health_check.port", "must be an integer"),
        ("web: {health_check: [port]}\n", "web.health_check", "must be a mapping"),
        ("web: {metadata: text}\n", "web.metadata", "must be a mapping"),
        ("web: {scael: 2}\n", "web.scael", "unknown rancher-compose key 'scael' (did you mean 'scale'?)"),
        ("web: 3\n", "web", "must be a mapping"),
        ("version: '2'\nservices: {web: {}}\nextra: 1\n", "extra", "unknown top-level key 'extra'"),
    ],
)
def test_rancher_errors(rancher: str, field: str, reason: str) -> None:
    exc = error(V1, rancher)
    assert exc.field == f"{RC}:{field}"
    assert exc.message.startswith(f"{RC}: ")
    assert reason in exc.message


def test_rancher_service_not_in_compose_is_ignored_with_a_warning_naming_both_files() -> None:
    # Rancher 1.6 ignored these entries (often a load balancer or a service removed from the compose file)
    spec = stack(V1, "version: '2'\nservices:\n  ghost: {scale: 2}\n")
    assert f"{RC}: service 'ghost' is not defined in {DC}; its settings were ignored" in spec.warnings
    assert "ghost" not in [s.name for s in spec.services]


def test_rancher_keys_we_do_not_support_warn() -> None:
    spec = stack(
        V1,
        """
        web:
          lb_config:
            port_rules: [{source_port: 80, target_port: 80, service: web}]
          drain_timeout_ms: 1000
        """,
    )
    assert spec.warnings == (
        f"{RC}: service web: key 'drain_timeout_ms' is not supported yet and was ignored",
        f"{RC}: service web: lb_config is ignored: the service is not a load balancer"
        " (image rancher/lb-service-haproxy or label io.corral.lb)",
    )


def test_warnings_from_all_stages_are_collected_in_order() -> None:
    spec = stack(
        "web:\n  image: nginx\n  logging: {driver: none}\n  user: $WHO\n",
        "web:\n  certs: []\n  metadata: {who: $WHOM}\n",
    )
    assert spec.warnings == (
        f"{DC}: variable 'WHO' is not set (first used at web.user); an empty string was used",
        f"{DC}: service web: key 'logging' is not supported yet and was ignored",
        f"{RC}: variable 'WHOM' is not set (first used at web.metadata.who); an empty string was used",
        f"{RC}: service web: key 'certs' is not supported yet and was ignored",
    )
