"""Cattle's service lifecycle on real hosts: kept at scale, `start_once`, `pull_image: always`, and no service left
"activating" for ever (a deadline turns it into `error` with the reason)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _wait_running, _write

pytestmark = pytest.mark.integration


def _service(server: ServerProcess, ref: str) -> dict:
    with server.client() as client:
        return client.stacks.find_service("default", ref)


def _up_with_deadline(
    server_with: Callable[..., ServerProcess], tmp_path: Path, deadline: int, host: str, stack: str, services: str
) -> ServerProcess:
    """A server whose activating deadline is `deadline` s, one host, and the stack `services` (compose YAML) up."""
    server = server_with(CORRAL_ACTIVATING_DEADLINE_SECONDS=str(deadline))
    _create_hosts(server, host)
    compose = _write(tmp_path, "docker-compose.yml", f"version: '2'\nservices:\n{services}")
    server.cli("up", "-d", "-f", str(compose), "-s", stack)
    return server


def _in_error(server: ServerProcess, ref: str, mentioning: str = "") -> dict | None:
    service = _service(server, ref)
    return service if service["state"] == "error" and mentioning in service["reason"] else None


def test_a_start_once_dependency_ends_cleanly_and_its_dependent_starts_after_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "l1")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n"
        "  init:\n    image: corral/busybox:latest\n    command: sh -c 'sleep 1; echo prepared'\n"
        "    labels:\n      io.rancher.container.start_once: 'true'\n"
        "  app:\n    image: corral/busybox:latest\n    command: sleep 3600\n    depends_on: [init]\n",
    )
    server.cli("up", "-f", str(compose), "-s", "boot", "--timeout", "60")
    app = _wait_running(server, "boot", "app", 1)
    (init,) = [c for c in _containers(server, "boot") if c["service"] == "init"]
    assert init["state"] == "exited" and init["exit_code"] == 0
    assert _service(server, "boot/init")["state"] == "active"
    assert _service(server, "boot/app")["state"] == "active"
    with server.client() as client:
        assert client.stacks.find("default", "boot")["state"] == "active"
    assert app[0]["state"] == "running"


def test_a_crashing_container_is_restarted_in_place_and_its_service_turns_error_after_the_deadline(
    server_with: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    crash = "  crash:\n    image: corral/busybox:latest\n    command: sh -c 'echo started; sleep 1; exit 3'\n"
    server = _up_with_deadline(server_with, tmp_path, 6, "l2", "flaky", crash)

    def first_container() -> dict | None:
        found = [c for c in _containers(server, "flaky") if c["docker_id"]]
        return found[0] if found else None

    docker_id = wait_until("the container to exist", lambda: (c := first_container()) and c["docker_id"], 60)
    service = wait_until("the service to turn error with the reason", lambda: _in_error(server, "flaky/crash"), 60)
    assert "flaky-crash-1 not running after 6 s" in service["reason"], service["reason"]
    assert "exit code 3" in service["reason"], service["reason"]
    # Kept at scale: the same container was started again (Corral's own restarts, spaced by a growing delay).
    logs = server.cli("logs", "flaky-crash-1").stdout
    assert logs.count("started") >= 2, logs
    container = first_container()
    assert container is not None and container["docker_id"] == docker_id
    reason = wait_until("the agent to say when it tries again", lambda: first_container()["reason"], 60)
    assert "automatic restarts; next try in" in reason, reason


def test_pull_image_always_fails_clearly_without_a_registry_and_the_service_shows_error(
    server_with: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    fresh = (
        "  fresh:\n    image: corral/busybox:latest\n    command: sleep 3600\n"
        "    labels:\n      io.rancher.container.pull_image: always\n"
    )
    server = _up_with_deadline(server_with, tmp_path, 5, "l3", "pulls", fresh)
    service = wait_until(
        "the pull failure as the service's error", lambda: _in_error(server, "pulls/fresh", "pull_image"), 60
    )
    assert "pull_image is always, and pulling corral/busybox:latest failed" in service["reason"], service["reason"]
    assert service["reason"].startswith("pulls-fresh-1 not running after 5 s: "), service["reason"]
    assert [c["state"] for c in _containers(server, "pulls")] == ["pending"]
