"""Desired-set deltas (model/deltas.py) through the real application: an agent whose `hello` asks for deltas gets a
full set with a version, then only the entries that changed against the version it holds; applying them gives the
same set the server would send in full (checked by forcing a gap: `ack` with `resync` brings the full set again);
a scale by one sends one entry, not the host's whole set; a reconnect starts from a full set; an agent that does not
ask keeps getting full sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import deltas, protocol
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_fast_paths import FACTS

COMPOSE = "services:\n  web:\n    image: nginx\n    environment:\n      A: '1'\n  db:\n    image: redis\n"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The test's agent speaks only when a message comes: under load, the suite's 0.4 s heartbeat deadline would
    mark its host gone (and nothing be placed) while it waits."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=5.0, host_grace_seconds=60.0)


class DeltaAgent:
    """The agent's side of the protocol, as agent/session.py does it: apply deltas on the held version, ack."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.version: int | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.sizes: list[tuple[bool, int]] = []  # (was a delta, bytes) of each desired message

    def receive(self) -> protocol.Message:
        while True:
            raw = self.ws.receive_text()
            message = protocol.decode(raw)
            if message.type == protocol.DESIRED:
                break
        data = message.data
        self.sizes.append(("put" in data, len(raw.encode())))
        if "put" in data:
            assert data["base"] == self.version, "the server sent a delta on a version this agent does not hold"
            self.entries = deltas.apply(self.entries, data)
        else:
            self.entries = deltas.by_slot(data["containers"])
        self.version = data["version"]
        self.ws.send_text(protocol.Message(protocol.ACK, {"desired": self.version}).encode())
        return message

    def until(self, count: int) -> None:
        for _ in range(30):
            if len(self.entries) == count:
                return
            self.receive()
        assert len(self.entries) == count


def _hello(ws: Any, **extra: Any) -> None:
    ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS, **extra}).encode())
    assert _recv(ws).type == protocol.WELCOME


def test_deltas_converge_to_the_full_set_and_a_gap_resends_it(api: TestClient) -> None:
    creds = register(api)
    auth = basic(creds["access_key"], creds["secret_key"])
    with api.websocket_connect("/v1/agent", headers=auth) as ws:
        _hello(ws, deltas=True)
        agent = DeltaAgent(ws)
        first = agent.receive()
        assert "containers" in first.data and isinstance(first.data["version"], int)
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE}).json()
        web = next(s["id"] for s in stack["services"] if s["name"] == "web")
        agent.until(2)
        scaled: list[tuple[bool, int]] = []
        for scale in (2, 3, 4, 5, 6):
            before = len(agent.sizes)
            assert api.post(f"/v1/services/{web}/scale", json={"scale": scale}).status_code == 200
            agent.until(scale + 1)
            scaled.extend(agent.sizes[before:])
        assert all(is_delta for is_delta, _ in scaled), scaled
        delta_bytes = [size for _, size in scaled]
        ws.send_text(protocol.Message(protocol.ACK, {"desired": agent.version, "resync": True}).encode())
        held = dict(agent.entries)
        full = agent.receive()  # a gap: the full set again, equal to what the deltas built
        assert "containers" in full.data
        assert deltas.by_slot(full.data["containers"]) == held
        assert full.data["containers"] == deltas.ordered(held)
        full_bytes = agent.sizes[-1][1]
        # one more container adds one entry; the full set of 7 carries seven (sizes reported by the test run)
        print(f"desired: full set of 7 = {full_bytes} B, scale-by-one deltas = {delta_bytes} B")
        assert max(delta_bytes) < full_bytes / 3
        assert api.post(f"/v1/services/{web}/scale", json={"scale": 1}).status_code == 200
        agent.until(2)
        assert agent.sizes[-1][0]  # scaling down is a delta too (the removed slot ids)
        assert deltas.by_slot(_full_now(ws, agent)) == agent.entries
    with api.websocket_connect("/v1/agent", headers=auth) as ws:  # a reconnect starts from the full set
        _hello(ws, deltas=True)
        agent = DeltaAgent(ws)
        assert "containers" in agent.receive().data and len(agent.entries) == 2


def _full_now(ws: Any, agent: DeltaAgent) -> list[dict[str, Any]]:
    ws.send_text(protocol.Message(protocol.ACK, {"desired": agent.version, "resync": True}).encode())
    message = agent.receive()
    assert "containers" in message.data
    return message.data["containers"]


def test_an_agent_that_does_not_ask_gets_full_sets(api: TestClient) -> None:
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        _hello(ws)
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE}).json()
        web = next(s["id"] for s in stack["services"] if s["name"] == "web")
        assert api.post(f"/v1/services/{web}/scale", json={"scale": 3}).status_code == 200
        for _ in range(30):
            message = _recv(ws)
            if message.type != protocol.DESIRED:
                continue
            assert "put" not in message.data and "containers" in message.data
            if len(message.data["containers"]) == 4:
                break
        assert len(message.data["containers"]) == 4
