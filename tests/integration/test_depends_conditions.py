"""Compose `depends_on` conditions on a real host (issue 17): a dependent starts only once its dependency is healthy
(service_healthy) or ran to a clean end (service_completed_successfully, which then is not restarted); while it
waits, its service says for what, a failed dependency included."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _engine, _wait_running, _write

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  db:
    image: corral/busybox:latest
    command: sh -c 'sleep 5; touch /tmp/ready; sleep 3600'
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
  migrate:
    image: corral/busybox:latest
    command: sh -c 'sleep 2; echo migrated'
  app:
    image: corral/busybox:latest
    command: sleep 3600
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  broken:
    image: corral/busybox:latest
    command: sh -c 'exit 3'
  blocked:
    image: corral/busybox:latest
    command: sleep 3600
    depends_on:
      broken: {condition: service_completed_successfully}
"""


def _service(server: ServerProcess, ref: str) -> dict:
    with server.client() as client:
        return client.stacks.find_service("default", ref)


def _time(text: str) -> float:
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def test_dependents_wait_for_healthy_and_completed_dependencies(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "dc1")
    compose = _write(tmp_path, "compose.yaml", COMPOSE)
    server.cli("up", "-d", "-f", str(compose), "-s", "conds")
    reason = wait_until(
        "app to say it waits for db's health",
        lambda: (r := _service(server, "conds/app")["reason"]) and "db to be healthy" in r and r,
        60,
        0.2,
    )
    assert "waiting for" in reason, reason
    assert not [c for c in _containers(server, "conds") if c["service"] == "app" and c["docker_id"]]

    (app,) = _wait_running(server, "conds", "app", 1, timeout=90)
    engine = _engine(server, "dc1")
    by_service = {c["service"]: c for c in _containers(server, "conds") if c["docker_id"]}
    db = engine.api.inspect_container(by_service["db"]["docker_id"])
    # the engine keeps only the last five probes, so the first success may be gone from the log; but no probe can
    # succeed before the command made /tmp/ready, 5 s after the container started
    healthy_at = _time(db["State"]["StartedAt"]) + 5.0
    migrate = engine.api.inspect_container(by_service["migrate"]["docker_id"])
    created = _time(engine.api.inspect_container(app["docker_id"])["Created"])
    assert created >= healthy_at, (created, healthy_at)
    assert created >= _time(migrate["State"]["FinishedAt"])

    # the completed dependency stays ended: Corral does not start it again as it would a Cattle service
    assert migrate["State"]["ExitCode"] == 0
    assert _service(server, "conds/migrate")["state"] == "active"
    blocked = wait_until(
        "blocked to name the failed dependency",
        lambda: (r := _service(server, "conds/blocked")["reason"]) and "exited with code 3" in r and r,
        60,
    )
    assert "broken to complete successfully" in blocked, blocked
    again = engine.api.inspect_container(by_service["migrate"]["docker_id"])
    assert again["State"]["StartedAt"] == migrate["State"]["StartedAt"]
    assert not [c for c in _containers(server, "conds") if c["service"] == "blocked" and c["docker_id"]]
    engine.close()
