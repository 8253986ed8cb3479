"""Stacks end to end on real engines: compose files to containers spread over local hosts, kept at scale."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

WEB = """
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: httpd -f -p 8080 -h /www
    stop_grace_period: 1s  # as PID 1, httpd and sleep ignore SIGTERM: no 10 s wait per stop
    environment:
      GREETING: hello
    labels:
      role: frontend
  worker:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _containers(server: ServerProcess, stack: str | None = None) -> list[dict[str, Any]]:
    args = ["ps", "-a", "--format", "json", *([stack] if stack else [])]
    return json.loads(server.cli(*args).stdout)


def _running(server: ServerProcess, stack: str, service: str) -> list[dict[str, Any]]:
    return [c for c in _containers(server, stack) if c["service"] == service and c["state"] == "running"]


def _per_host(containers: list[dict[str, Any]]) -> list[int]:
    return sorted(Counter(c["host"] for c in containers).values())


def _create_hosts(server: ServerProcess, *names: str, extra: tuple[tuple[str, ...], ...] = ()) -> None:
    """`corral hosts create --driver local NAME` for every name (and the `extra` argument lists) at once: the hosts
    start together instead of one after the other; each command still waits for its host to turn active."""
    commands = [("hosts", "create", "--driver", "local", name) for name in names]
    server.cli_all(*commands, *(("hosts", "create", "--driver", "local", *args) for args in extra))


def _wait_running(server: ServerProcess, stack: str, service: str, count: int, timeout: float = 60) -> list[dict]:
    def check() -> list[dict] | None:
        containers = [c for c in _containers(server, stack) if c["service"] == service]
        running = [c for c in containers if c["state"] == "running"]
        return running if len(running) == count and len(containers) == count else None

    return wait_until(f"{stack}/{service} at {count} running", check, timeout=timeout)


def _engine(server: ServerProcess, host: str) -> docker.DockerClient:
    record = server.driver().load(host)
    assert record is not None
    return docker.DockerClient(base_url=record.docker_host)


def test_scale_spreads_over_hosts_and_scaling_down_removes_extras(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "h1", "h2")
    compose = _write(tmp_path, "docker-compose.yml", WEB)
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  web:\n    scale: 4\n")
    server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "shop")
    web = _wait_running(server, "shop", "web", 4)
    assert _per_host(web) == [2, 2]
    assert len(_wait_running(server, "shop", "worker", 1)) == 1

    _create_hosts(server, "h3")
    server.cli("scale", "shop/web=6")
    web = _wait_running(server, "shop", "web", 6)
    assert _per_host(web) == [2, 2, 2]
    assert sorted(c["index"] for c in web) == [1, 2, 3, 4, 5, 6]

    server.cli("scale", "shop/web=1")
    web = _wait_running(server, "shop", "web", 1)
    assert web[0]["index"] == 1
    # the engines agree: the agents removed the extras, one web container is left across the three hosts
    engines = [_engine(server, host) for host in ("h1", "h2", "h3")]

    def web_containers() -> int:
        return sum(len(e.api.containers(all=True, filters={"label": "io.corral.service=web"})) for e in engines)

    wait_until("extras removed from the engines", lambda: web_containers() == 1, timeout=30)
    for engine in engines:
        engine.close()


def test_up_twice_changes_nothing_and_an_env_change_recreates_only_that_service(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "u1", "u2")
    compose = _write(tmp_path, "docker-compose.yml", WEB)
    server.cli("up", "-f", str(compose), "-s", "app")
    before = {c["name"]: c["docker_id"] for c in _wait_running(server, "app", "web", 1)}
    before |= {c["name"]: c["docker_id"] for c in _wait_running(server, "app", "worker", 1)}

    result = json.loads(server.cli("up", "-f", str(compose), "-s", "app", "--format", "json").stdout)
    assert result["changed_services"] == []
    time.sleep(3)  # give a wrong implementation the time to recreate something
    assert {c["name"]: c["docker_id"] for c in _containers(server, "app")} == before

    compose.write_text(WEB.replace("GREETING: hello", "GREETING: bonjour"))
    result = json.loads(server.cli("up", "-f", str(compose), "-s", "app", "--format", "json").stdout)
    assert result["changed_services"] == ["web"]
    web = wait_until(
        "web recreated",
        lambda: [
            c for c in _running(server, "app", "web") if c["docker_id"] != before["app-web-1"] and c["up_to_date"]
        ],
        timeout=60,
    )
    assert len(web) == 1
    assert _running(server, "app", "worker")[0]["docker_id"] == before["app-worker-1"]
    engine = _engine(server, web[0]["host"])
    assert "GREETING=bonjour" in engine.api.inspect_container(web[0]["docker_id"])["Config"]["Env"]
    engine.close()


def test_host_loss_moves_containers_and_its_return_leaves_no_duplicates(server_with, tmp_path: Path) -> None:
    server = server_with(CORRAL_HOST_GRACE_SECONDS="8", CORRAL_LOCAL_SUPERVISE_SECONDS="0")
    _create_hosts(server, "l1", "l2", "l3")
    compose = _write(tmp_path, "docker-compose.yml", WEB)
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  web:\n    scale: 3\n")
    server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "ha")
    web = _wait_running(server, "ha", "web", 3)
    assert _per_host(web) == [1, 1, 1]

    lost = server.driver().load("l3")
    assert lost is not None
    os.kill(lost.agent_pid, signal.SIGKILL)
    os.kill(lost.dockerd_pid, signal.SIGKILL)
    wait_until(
        "l3 disconnected",
        lambda: any(h["name"] == "l3" and h["state"] == "disconnected" for h in server.client().list_hosts()),
        timeout=30,
    )
    # the lost host's container still shows as last reported until its replacement is placed (after the grace)
    web = wait_until(
        "three web containers running on l1 and l2",
        lambda: len(running := [c for c in _running(server, "ha", "web") if c["host"] != "l3"]) == 3 and running,
        timeout=60,
    )
    assert {c["host"] for c in web} == {"l1", "l2"}
    assert sorted(c["index"] for c in web) == [1, 2, 3]

    server.driver().revive("l3", server.agent_command("l3"))
    wait_until(
        "l3 active", lambda: any(h["name"] == "l3" and h["state"] == "active" for h in server.client().list_hosts()), 30
    )
    engine = _engine(server, "l3")
    wait_until(
        "stale copies removed from l3",
        lambda: not engine.api.containers(all=True, filters={"label": "io.corral.stack=ha"}),
        timeout=30,
    )
    engine.close()
    web = _wait_running(server, "ha", "web", 3)
    assert sorted(c["index"] for c in web) == [1, 2, 3]


def test_agent_killed_three_times_restarts_and_duplicates_nothing(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "k1")
    compose = _write(tmp_path, "docker-compose.yml", WEB)
    server.cli("up", "-f", str(compose), "-s", "steady")
    _wait_running(server, "steady", "web", 1)
    _wait_running(server, "steady", "worker", 1)
    engine = _engine(server, "k1")
    before = {c.id: c.attrs["State"]["StartedAt"] for c in engine.containers.list(all=True)}
    assert len(before) == 2
    host_id = next(h["id"] for h in server.client().list_hosts() if h["name"] == "k1")
    for _ in range(3):
        record = server.driver().load("k1")
        assert record is not None
        os.kill(record.agent_pid, signal.SIGKILL)
        wait_until("k1 not active", lambda: server.client().get_host(host_id)["state"] != "active", 10, 0.1)
        wait_until("k1 active again", lambda: server.client().get_host(host_id)["state"] == "active", 30)
    time.sleep(3)
    after = {c.id: c.attrs["State"]["StartedAt"] for c in engine.containers.list(all=True)}
    assert after == before
    assert all(engine.api.inspect_container(cid)["RestartCount"] == 0 for cid in after)
    engine.close()


@pytest.mark.parametrize(
    ("compose", "field_part"),
    [
        ("services:\n  web:\n    image: corral/busybox\n    imagee: x\n", "imagee"),
        ("services:\n  web:\n    image: corral/busybox\n    ports: ['abc']\n", "ports"),
        ("services:\n  web:\n    command: sleep 1\n", "image"),
        (
            "services:\n  a:\n    image: corral/busybox\n    depends_on: [b]\n"
            "  b:\n    image: corral/busybox\n    depends_on: [a]\n",
            "depends_on",
        ),
    ],
)
def test_bad_compose_is_refused_naming_file_service_and_field(
    module_server: ServerProcess, tmp_path: Path, compose: str, field_part: str
) -> None:
    server = module_server  # one server for the four cases: each is refused and leaves nothing (checked below)
    path = _write(tmp_path, "docker-compose.yml", "version: '3'\n" + compose)
    result = server.cli("up", "-f", str(path), "-s", "bad", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "docker-compose.yml" in result.stderr and field_part in result.stderr
    response = server.client()._http.put("/v1/stacks", json={"name": "bad", "compose": "version: '3'\n" + compose})
    assert response.status_code == 422
    body = response.json()
    assert "docker-compose.yml" in body["message"] and field_part in body["field"] + body["message"]
    assert server.client().stacks.list_all() == []
    assert _containers(server) == []


def test_cli_ps_lists_containers_with_hosts(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "p1")
    compose = _write(tmp_path, "docker-compose.yml", WEB)
    server.cli("up", "-f", str(compose), "-s", "listed")
    table = server.cli("ps").stdout
    assert "listed" in table and "p1" in table and "running" in table

    web = _wait_running(server, "listed", "web", 1)[0]
    engine = _engine(server, "p1")
    networks = engine.api.inspect_container(web["docker_id"])["NetworkSettings"]["Networks"]
    assert web["ip"] and web["ip"] == next(iter(networks.values()))["IPAddress"]
    assert web["ip"] in server.cli("ps").stdout
    started = engine.api.inspect_container(web["docker_id"])["State"]["StartedAt"]
    server.cli("restart", "listed/web")
    wait_until(
        "web restarted in place",
        lambda: (
            engine.api.inspect_container(web["docker_id"])["State"]["StartedAt"] != started
            and engine.api.inspect_container(web["docker_id"])["State"]["Running"]
        ),
        timeout=60,
    )
    assert _wait_running(server, "listed", "web", 1)[0]["docker_id"] == web["docker_id"]

    server.cli("stop", "listed-worker-1")
    wait_until(
        "worker stopped",
        lambda: [c["state"] for c in _containers(server) if c["service"] == "worker"] == ["exited"],
        60,
    )
    assert "listed-worker-1" not in server.cli("ps").stdout  # ps hides stopped containers, ps -a shows them
    assert "listed-worker-1" in server.cli("ps", "-a").stdout
    server.cli("start", "listed-worker-1")
    _wait_running(server, "listed", "worker", 1)
    engine.close()
    server.cli("rm", "listed")
    wait_until("containers removed", lambda: _containers(server) == [], timeout=30)
    engine = _engine(server, "p1")
    wait_until("engine empty", lambda: not engine.api.containers(all=True), timeout=30)
    engine.close()
