"""A rolling restart survives a server killed between its batches: the restart is stored with the service and the
restarted server's orchestrator carries it on (orchestrator/restarts.py), on real engines in netns hosts."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s  # sleep as PID 1 ignores SIGTERM: do not wait Docker's default 10 s per stop
"""
RANCHER = "version: '2'\nservices:\n  web:\n    scale: 3\n"
LABELS = ["io.corral.stack=rs", "io.corral.service=web"]


def _containers(engine: docker.DockerClient) -> list[dict[str, Any]]:
    return list(engine.api.containers(all=True, filters={"label": LABELS}))


def _started(engine: docker.DockerClient, ids: set[str]) -> dict[str, str]:
    return {i: engine.api.inspect_container(i)["State"]["StartedAt"] for i in ids}


def _state(server: ServerProcess) -> str:
    with server.client() as client:
        return str(client.stacks.find_service("default", "rs/web")["state"])


def test_a_rolling_restart_goes_on_after_the_server_is_killed(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "h1")
    record = server.driver().load("h1")
    assert record is not None
    engine = docker.DockerClient(base_url=record.docker_host)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    (tmp_path / "rancher-compose.yml").write_text(RANCHER)
    files = ["-f", str(tmp_path / "docker-compose.yml"), "-f", str(tmp_path / "rancher-compose.yml")]
    server.cli("up", *files, "-s", "rs")
    ids = wait_until(
        "3 web containers running",
        lambda: len(r := {c["Id"] for c in _containers(engine) if c["State"] == "running"}) == 3 and r,
        90,
    )
    before = _started(engine, ids)
    # Docker's `since` counts whole seconds: start counting at the next one, so the containers' first starts (which
    # may have happened within this second) are not counted as restarts.
    now = time.time()
    since = int(now) + 1
    time.sleep(since - now + 0.05)

    running: list[int] = []  # how many run, sampled through the whole restart
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            running.append(sum(1 for c in _containers(engine) if c["State"] == "running"))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with server.client() as client:
            service = client.stacks.find_service("default", "rs/web")
            answer = client.stacks.restart_service(service["id"], batch_size=1, interval_ms=5000)
        assert answer["state"] == "restarting"

        def first_batch_back() -> bool:
            now = _started(engine, ids)
            moved = [i for i in ids if now[i] != before[i]]
            up = {c["Id"] for c in _containers(engine) if c["State"] == "running"}
            return len(moved) == 1 and up == ids

        wait_until("the first batch running again", first_batch_back, 90, interval=0.1)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)  # by PID; the hosts' agents are processes of their own
        server.process.wait(10)
        server.start()  # the same data dir and port

        wait_until("the restart done", lambda: _state(server) == "active", 120)
        wait_until(
            "all 3 running", lambda: {c["Id"] for c in _containers(engine) if c["State"] == "running"} == ids, 60
        )
    finally:
        done.set()
        sampler.join(10)
    after = _started(engine, ids)
    assert all(after[i] != before[i] for i in ids), (before, after)
    starts = engine.api.events(
        since=since, until=int(time.time()) + 1, filters={"event": "start", "label": LABELS}, decode=True
    )
    counted: dict[str, int] = {}
    for event in starts:
        counted[event["id"]] = counted.get(event["id"], 0) + 1
    assert counted == dict.fromkeys(ids, 1), counted  # each container started again exactly once
    assert {c["Id"] for c in _containers(engine)} == ids  # restarted, not recreated
    assert running and min(running) >= 2, running  # never more than one down
