"""`corral ps --filter/-q/--format`, `port`, `wait` and `down` with the CLI's own client speaking to the
in-process application; a test agent on the agent websocket reports the containers as an engine would."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import protocol
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture
from tests.api.test_fast_paths import FACTS, _reported

COMPOSE = (
    "services:\n"
    "  web:\n    image: nginx\n    scale: 2\n    ports: ['80', '53/udp']\n"
    "  db:\n    image: redis\n    ports: ['8080:6379']\n"
    "  big:\n    image: nginx\n    scale: 2\n    ports: ['9000:9000']\n"  # one host: index 2 cannot be placed
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The test's agent speaks only when spoken to: a long heartbeat keeps its host active meanwhile."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=5.0, host_grace_seconds=60.0)


@pytest.fixture
def agent(api: TestClient) -> Iterator[Any]:
    creds = register(api, "edge-1")
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        yield ws


def _desired(ws: Any, count: int) -> list[dict[str, Any]]:
    for _ in range(50):
        message = _recv(ws)
        if message.type == protocol.DESIRED and len(message.data["containers"]) == count:
            return [d["slot"] for d in message.data["containers"]]
    raise AssertionError(f"no desired set of {count} containers")


def _report(api: TestClient, ws: Any, reports: list[dict[str, Any]]) -> None:
    ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": reports}).encode())
    wanted = {r["docker_id"]: r["state"] for r in reports}
    for _ in range(200):  # the server's event loop stores the snapshot
        seen = {c["docker_id"]: c["state"] for c in api.get("/v1/containers").json()["data"] if c["docker_id"]}
        if seen == wanted:
            return
    raise AssertionError(f"reports not stored: {seen} != {wanted}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_ps_filters_quiet_format_port_wait_and_down(api: TestClient, agent: Any, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    code, out = corral("up", "-d", "-f", str(tmp_path / "compose.yaml"), "-s", "app")
    assert code == 0, out
    slots = {(s["service"], s["index"]): s for s in _desired(agent, 4)}
    reports = [
        _reported(slots[("web", 1)], "running", "w1"),
        _reported(slots[("web", 2)], "exited", "w2"),
        _reported(slots[("db", 1)], "running", "d1"),
        _reported(slots[("big", 1)], "running", "b1"),
    ]
    _report(api, agent, reports)

    # ps: filters (server-side where the API has them), -q, --format
    code, out = corral("ps", "--filter", "service=web", "--format", "{{.name}} {{.state}} {{.host}}")
    assert (code, out) == (0, "app-web-1 running edge-1\n")  # without -a: live containers only
    code, out = corral("ps", "-a", "--filter", "service=app/web", "--format", "{{.name}} {{.state}}")
    assert (code, out.splitlines()) == (0, ["app-web-1 running", "app-web-2 exited"])
    code, out = corral("ps", "--filter", "state=exited", "--format", "{{.name}}")  # a state filter implies -a
    assert (code, out) == (0, "app-web-2\n")
    code, out = corral("ps", "-a", "--filter", "name=db", "--filter", "host=edge-1", "--format", "{{.docker_id}}")
    assert (code, out) == (0, "d1\n")
    code, out = corral("ps", "-a", "--filter", "name=web-1", "--filter", "name=db", "--format", "{{.name}}")
    assert (code, out.splitlines()) == (0, ["app-db-1", "app-web-1"])  # a key given twice: either value
    assert corral("ps", "-a", "--filter", "host=elsewhere", "-q") == (0, "")
    code, out = corral("ps", "-q", "app")
    assert sorted(out.split()) == sorted(slots[key]["id"] for key in (("web", 1), ("db", 1), ("big", 1)))
    code, out = corral("ps", "--filter", "state=unplaced")  # the index no host can take, with its reason
    assert code == 0 and [line.split()[:3] for line in out.splitlines()[1:]] == [["app", "big", "app-big-2"]]
    assert "9000" in out
    assert corral("ps", "--filter", "state=unplaced", "--filter", "service=web")[1].splitlines()[1:] == []
    code, out = corral("ps", "--filter", "colour=red")
    assert code == 1 and "unknown key 'colour'; the keys: stack, service, host, state, name" in " ".join(out.split())
    code, out = corral("ps", "--format", "{{.nme}}")
    assert code == 1 and "no field '.nme'; the fields of a record:" in out and "name" in out
    code, out = corral("stacks", "ls", "--format", "table {{.name}}\\t{{.state}}")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "STATE"] and out.splitlines()[1].startswith("app")
    code, out = corral("inspect", "app/web", "--format", "{{.name}} {{.scale}}")
    assert (code, out) == (0, "web 2\n")
    code, out = corral("hosts", "ls", "--format", "{{.name}}")
    assert (code, out) == (0, "edge-1\n")

    # port
    web1 = api.get(f"/v1/containers/{slots[('web', 1)]['id']}").json()
    published = dict(line.split(" -> ") for line in corral("port", "app/web/1")[1].splitlines())
    assert set(published) == {"80/tcp", "53/udp"} and published["80/tcp"].rpartition(":")[2].isdigit()
    assert published == {p.split("->")[1]: p.split("->")[0] for p in web1["ports"]}
    assert corral("port", "app/web/1", "80") == (0, published["80/tcp"] + "\n")
    code, out = corral("port", "app/web", "53/udp")
    assert code == 0 and [line.split(": ")[0] for line in out.splitlines()] == ["app-web-1", "app-web-2"]
    code, out = corral("port", "app-web-1", "81")
    assert code == 1 and "app-web-1 does not publish port 81/tcp (it publishes" in " ".join(out.split())
    assert corral("port", "app/db", "6379")[1].endswith(":8080\n")
    code, out = corral("port", "app/db", "6380")
    assert code == 1 and "does not publish port 6380/tcp" in out
    assert corral("port", "app/web/7")[0] == 1 and corral("port", "app/web", "http")[0] == 1

    # wait: web-2 exited, so the stack is not settled; once running, it is
    code, out = corral("wait", "app", "--timeout", "0")
    assert code == 1 and "app is not settled" in out and "app-web-2 exited" in out and "#2" in out
    _report(api, agent, [*reports[:1], _reported(slots[("web", 2)], "running", "w2"), *reports[2:]])
    code, out = corral("wait", "app/web", "app/db", "--timeout", "30")  # progress on stderr, then the result
    assert (code, out.splitlines()[-2:]) == (0, ["app/web settled", "app/db settled"])
    code, out = corral("wait", "app/big", "--timeout", "1")
    assert code == 1 and "app/big is not settled after 1 s" in " ".join(out.split()) and "9000" in out

    # logs --since/--timestamps/--tail reach the agent's stream request
    asked: list[dict[str, Any]] = []

    def answer_logs() -> None:  # as an agent: the engine's output for the stream the server opened
        while (message := _recv(agent, protocol.DESIRED)).type != protocol.LOGS:
            pass
        asked.append(message.data)
        chunk = base64.b64encode(b"2026-12-06T15:00:00.000000000Z hello\n").decode()
        request = message.data["request_id"]
        agent.send_text(
            protocol.Message(protocol.OUTPUT, {"request_id": request, "stream": "stdout", "data": chunk}).encode()
        )
        agent.send_text(protocol.Message(protocol.END, {"request_id": request, "exit_code": None}).encode())

    answering = threading.Thread(target=answer_logs, daemon=True)
    answering.start()
    before = time.time()
    code, out = corral("logs", "app-web-1", "--since", "10m", "--timestamps", "--tail", "5")
    answering.join(10)
    assert (code, out) == (0, "2026-12-06T15:00:00.000000000Z hello\n")
    assert asked[0]["docker_id"] == "w1" and asked[0]["timestamps"] is True and asked[0]["tail"] == 5
    assert before - 600 <= asked[0]["since"] <= time.time() - 600
    code, out = corral("logs", "app-web-1", "--since", "yesterday-ish")
    assert code == 1 and "--since 'yesterday-ish': give a duration" in out

    # stats: one sample each (--no-stream), or a stream until the agent ends it
    sample = {"time": 1.0, "cpu_percent": 12.5, "memory_usage": 3 << 20, "memory_limit": 1 << 30}
    sample |= {"memory_percent": 0.29, "network_rx": 2048, "network_tx": 100}

    def answer_stats(requests: int, samples: int) -> None:
        for _ in range(requests):
            while (message := _recv(agent, protocol.DESIRED)).type != protocol.STATS:
                pass
            asked.append(message.data)
            request = message.data["request_id"]
            for n in range(samples):
                line = base64.b64encode(json.dumps({**sample, "time": float(n)}).encode() + b"\n").decode()
                data = {"request_id": request, "stream": "stdout", "data": line}
                agent.send_text(protocol.Message(protocol.OUTPUT, data).encode())
            agent.send_text(protocol.Message(protocol.END, {"request_id": request, "exit_code": None}).encode())

    asked.clear()
    answering = threading.Thread(target=answer_stats, args=(2, 1), daemon=True)
    answering.start()
    code, out = corral("stats", "app/web", "--no-stream")
    answering.join(10)
    assert code == 0, out
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["NAME", "CPU"],
        ["app-web-1", "12.50%"],
        ["app-web-2", "12.50%"],
    ]
    assert "3.00MiB / 1.00GiB" in out and "2.00KiB / 100B" in out
    assert [(a["docker_id"], a["stream"]) for a in asked] == [("w1", False), ("w2", False)]
    answering = threading.Thread(target=answer_stats, args=(1, 2), daemon=True)
    answering.start()
    code, out = corral("stats", "app-db-1", "--format", "{{.name}} {{.time}} {{.cpu_percent}}")
    answering.join(10)
    assert (code, out) == (0, "app-db-1 0.0 12.5\napp-db-1 1.0 12.5\n")
    assert asked[-1]["docker_id"] == "d1" and asked[-1]["stream"] is True

    # down: returns once the agent no longer reports the stack's containers
    reporting_empty = threading.Event()

    def converge() -> None:  # as an agent: the stack leaves the desired set, the engine removes its containers
        _desired(agent, 0)
        reporting_empty.set()
        agent.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": []}).encode())

    converging = threading.Thread(target=converge, daemon=True)
    converging.start()
    code, out = corral("down", "-f", str(tmp_path / "compose.yaml"), "-p", "app", "--timeout", "60")
    assert (code, out.splitlines()[-1]) == (0, "app"), out
    assert reporting_empty.is_set()  # down did not return before the agent reported the containers gone
    converging.join(10)
    assert json.loads(corral("stacks", "ls", "--format", "json")[1]) == []
    code, out = corral("down", "app")
    assert code == 0 and "stack app does not exist: nothing to remove" in " ".join(out.split())
