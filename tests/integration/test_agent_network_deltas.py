"""model/network_deltas.py with the real agent process (agent/session.py `_on_network`) against a scripted server:
it asks for network deltas in its hello, applies a delta on the version it holds and acknowledges it, answers a
delta on another version (a gap) with an `ack` asking for the full state and changes nothing, and after a delta it
cannot read drops its version, so that only a full state is taken next."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from corral.model import protocol
from tests.integration.agent_harness import (  # noqa: F401
    FakeServer,
    StartAgent,
    fake_server_fixture,
    start_agent_fixture,
    state_dir_fixture,
)
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST

pytestmark = pytest.mark.integration


def _container(index: int) -> dict[str, Any]:
    return {
        "slot_id": f"s-{index}",
        "name": f"app-web-{index}",
        "stack": "app",
        "service": "web",
        "index": index,
        "host_id": "h-other",
        "ip": f"10.42.1.{index + 1}",
        "running": True,
        "healthy": True,
    }


def _wait_for_log(log_path: Path, text: str, times: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.read_text(errors="replace").count(text) >= times:
            return
        time.sleep(0.1)
    raise AssertionError(f"the agent never logged {text!r}")


def test_the_agent_applies_network_deltas_acks_them_and_asks_for_the_full_state_after_a_gap(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    agent = start_agent(state_dir, DOCKER_HOST)
    _, hello = fake_server.expect(protocol.HELLO)
    assert hello.data["network_deltas"] is True

    def send(data: dict[str, Any]) -> None:
        fake_server.send(protocol.Message(protocol.NETWORK, data).encode())

    def ack(where: Any) -> dict[str, Any]:
        return fake_server.expect(protocol.ACK, where=lambda m: "network" in m.data and where(m.data))[1].data

    host = {"host_id": "h-1", "name": "h1", "address": "", "slice": ""}  # no slice: nothing is applied to the engine
    full = {"environment_id": fake_server.environment_id, "environment": "Default", "host": host, "version": 1}
    send({**full, "containers": [_container(1)], "services": [{"stack": "app", "name": "web", "scale": 1}]})
    assert "resync" not in ack(lambda d: d["network"] == 1)
    _wait_for_log(agent.log_path, "0 peers, 1 containers")

    put = {"containers": [_container(2)], "services": [{"stack": "app", "name": "web", "scale": 2}]}
    send({"put": put, "remove": {}, "base": 1, "version": 2})
    assert "resync" not in ack(lambda d: d["network"] == 2)
    _wait_for_log(agent.log_path, "0 peers, 2 containers")  # the delta kept the container it did not name

    send({"put": {}, "remove": {"containers": ["s-1", "s-2"]}, "base": 7, "version": 8})  # a gap: not applied
    assert ack(lambda d: d.get("resync") is True)["network"] == 2
    send({"put": {}, "remove": {"containers": ["s-1"]}, "base": 2, "version": 3})  # still version 2 held
    assert "resync" not in ack(lambda d: d["network"] == 3)
    _wait_for_log(agent.log_path, "0 peers, 1 containers", times=2)

    send({"put": {"containers": [{"name": "no slot id"}]}, "remove": {}, "base": 3, "version": 4})
    _, error = fake_server.expect(protocol.ERROR)
    assert "slot_id" in error.data["message"]
    assert ack(lambda d: d.get("resync") is True)["network"] is None  # dropped: it takes a full state only
    send({"put": {}, "remove": {}, "base": 3, "version": 5})
    assert ack(lambda d: d.get("resync") is True)["network"] is None
