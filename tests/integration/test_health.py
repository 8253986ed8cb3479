"""Health checks end to end: the agent probes real containers over their bridge address, the server acts on the
strategy (recreate / none / recreateOnQuorum), and `ps` and the service views show health and degraded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

# httpd serves /www (index.html is in the image) in the background; `fail_after` seconds later the page goes,
# so the check passes first (healthy) and then fails (unhealthy). A replacement container starts from the image
# again, with its page.
COMPOSE = """
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "httpd -p 80 -h /www && sleep {fail_after} && rm /www/index.html && exec sleep 3600"]
    stop_grace_period: 1s  # as PID 1, sleep ignores SIGTERM: a replacement waits for the old container's stop
"""


def _rancher(path: str, strategy: str, *, scale: int = 1, extra: str = "") -> str:
    return f"""
version: '2'
services:
  web:
    scale: {scale}
    health_check:
      port: 80
      request_line: GET {path} HTTP/1.0
      interval: 500
      response_timeout: 1000
      healthy_threshold: 2
      unhealthy_threshold: 3
      initializing_timeout: 3000
      strategy: {strategy}
{extra}"""


def _up(server: ServerProcess, tmp_path: Path, stack: str, rancher: str, fail_after: int = 3600) -> None:
    folder = tmp_path / stack
    folder.mkdir()
    compose = folder / "docker-compose.yml"
    compose.write_text(COMPOSE.format(fail_after=fail_after))
    (folder / "rancher-compose.yml").write_text(rancher)
    server.cli("up", "-d", "-f", str(compose), "-f", str(folder / "rancher-compose.yml"), "-s", stack)


def _containers(server: ServerProcess, stack: str) -> list[dict[str, Any]]:
    return [c for c in json.loads(server.cli("ps", "-a", "--format", "json", stack).stdout) if c["state"] == "running"]


def _service(server: ServerProcess, stack: str) -> dict[str, Any]:
    found = next(s for s in server.client().stacks.list_all() if s["name"] == stack)
    service: dict[str, Any] = found["services"][0]
    return service


def _wait_health(server: ServerProcess, stack: str, health: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        containers = _containers(server, stack)
        return containers[0] if len(containers) == 1 and containers[0]["health"] == health else None

    result: dict[str, Any] = wait_until(f"{stack}: one container {health}", check, timeout=timeout)
    return result


def test_failing_http_checks_follow_the_strategy(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "hc1")
    _up(server, tmp_path, "passing", _rancher("/index.html", "recreate"))
    _up(server, tmp_path, "recreated", _rancher("/index.html", "recreate"), fail_after=4)
    _up(server, tmp_path, "left", _rancher("/index.html", "none"), fail_after=4)
    quorum = "      recreate_on_quorum_strategy_config:\n        quorum: 2\n"
    _up(server, tmp_path, "quorum", _rancher("/index.html", "recreateOnQuorum", extra=quorum), fail_after=4)
    _up(server, tmp_path, "never", _rancher("/missing", "none"))

    # A passing check: initializing -> healthy, the service active.
    passing = _wait_health(server, "passing", "healthy")
    assert passing["health_reason"] == ""
    wait_until("passing is active", lambda: _service(server, "passing")["state"] == "active", timeout=30)

    # recreate: healthy first, then after 3 failed checks unhealthy, and replaced by a new container.
    first = _wait_health(server, "recreated", "healthy")

    def replaced() -> dict[str, Any] | None:
        containers = _containers(server, "recreated")
        fresh = [c for c in containers if c["docker_id"] != first["docker_id"]]
        return fresh[0] if len(containers) == 1 and fresh else None

    second = wait_until("the unhealthy container is replaced", replaced, timeout=60)
    assert (second["index"], second["host"]) == (first["index"], first["host"])
    assert second["id"] != first["id"]  # a new slot for the same index

    # none: it stays, unhealthy with the reason of the failed checks, and the service is degraded.
    left = _wait_health(server, "left", "unhealthy")
    assert "3 checks in a row failed" in left["health_reason"] and "HTTP 404" in left["health_reason"]
    service = _service(server, "left")
    assert service["state"] == "degraded" and service["healthy"] == 0
    assert "is unhealthy" in service["reason"]

    # recreateOnQuorum with quorum 2 and one container: never enough healthy ones, so it is not replaced.
    unhealthy = _wait_health(server, "quorum", "unhealthy")

    # A check that never passes does not stay initializing: unhealthy after initializing_timeout, with a reason.
    never = _wait_health(server, "never", "unhealthy")
    assert never["health_reason"].startswith("no successful check within 3 s after start")

    # Meanwhile the ones left alone kept their containers.
    assert _wait_health(server, "left", "unhealthy")["docker_id"] == left["docker_id"]
    assert _wait_health(server, "quorum", "unhealthy")["docker_id"] == unhealthy["docker_id"]
    assert _wait_health(server, "never", "unhealthy")["docker_id"] == never["docker_id"]
    table = server.cli("ps", "left").stdout
    assert "HEALTH" in table and "unhealthy" in table


def test_a_compose_healthcheck_command_runs_in_docker_and_its_status_is_reported(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("hosts", "create", "--driver", "local", "hc2")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "version: '2'\nservices:\n"
        "  good:\n    image: corral/busybox:latest\n    command: sleep 3600\n"
        "    healthcheck: {test: [CMD, 'true'], interval: 500ms, retries: 2}\n"
        "  bad:\n    image: corral/busybox:latest\n    command: sleep 3600\n"
        "    healthcheck: {test: 'exit 1', interval: 500ms, retries: 2}\n"
    )
    server.cli("up", "-d", "-f", str(compose), "-s", "cmd")

    def health_of(service: str) -> tuple[str, str]:
        found = [c for c in _containers(server, "cmd") if c["service"] == service]
        return (found[0]["health"], found[0]["health_reason"]) if found else ("", "")

    wait_until("good is healthy", lambda: health_of("good")[0] == "healthy", timeout=60)
    # health and reason from one read: the unhealthy container may be replaced right after
    unhealthy = wait_until("bad is unhealthy", lambda: (seen := health_of("bad"))[0] == "unhealthy" and seen, 60)
    assert "healthcheck command fails" in unhealthy[1]
