"""Network-state deltas (model/network_deltas.py) through the real application, at 50 hosts x 500 containers: every
agent's `hello` asks for deltas; after its full state, a scale-by-one brings the observing agent a few small deltas
(its entries changed), the state it builds from them equals the full state the server sends on a gap (`ack` with
`resync`), and their bytes are a small fraction of that full state. An agent that does not ask gets full states."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import deltas, protocol
from corral.model.network_deltas import Parts, apply_network, full_state
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.api.test_fast_paths import FACTS

HOSTS = 50
CONTAINERS = 500


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The unread agents send no heartbeat while the test runs: a long deadline keeps their hosts active."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=60.0, host_grace_seconds=600.0)


class NetworkAgent:
    """The agent's side (agent/session.py `_on_network`): apply deltas on the held version, ack, resync on a gap."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.version: int | None = None
        self.parts: Parts | None = None
        self.sizes: list[tuple[bool, int]] = []  # (was a delta, bytes) of each network message

    def receive(self) -> dict[str, Any]:
        while True:
            raw = self.ws.receive_text()
            message = protocol.decode(raw)
            if message.type == protocol.NETWORK:
                break
        data = message.data
        self.sizes.append(("base" in data, len(raw.encode())))
        if "base" in data:
            assert self.parts is not None and not deltas.is_gap(self.version, data), "a delta on another version"
            self.parts = apply_network(self.parts, data)
        else:
            self.parts = Parts.of(data)
        self.version = data["version"]
        self.ws.send_text(protocol.Message(protocol.ACK, {"network": self.version}).encode())
        return data

    def containers(self) -> dict[str, dict[str, Any]]:
        return dict(self.parts.sections["containers"]) if self.parts is not None else {}

    def until(self, done: Any) -> None:
        for _ in range(200):
            if done(self.containers()):
                return
            self.receive()
        raise AssertionError(f"not reached: {len(self.containers())} containers held")


def _all_addressed(count: int) -> Any:
    return lambda held: len(held) == count and all(c["ip"] for c in held.values())


def test_a_scale_by_one_sends_small_deltas_that_rebuild_the_full_state(api: TestClient) -> None:
    creds = [register(api, name=f"n{i:02d}") for i in range(HOSTS)]
    with contextlib.ExitStack() as stack:
        sockets = []
        for cred in creds:
            ws = stack.enter_context(
                api.websocket_connect("/v1/agent", headers=basic(cred["access_key"], cred["secret_key"]))
            )
            hello = {"facts": FACTS, "deltas": True, "network_deltas": True}
            ws.send_text(protocol.Message(protocol.HELLO, hello).encode())
            sockets.append(ws)
        agent = NetworkAgent(sockets[0])  # the others never read: their queues hold their (small) deltas
        first = agent.receive()
        assert "containers" in first and isinstance(first["version"], int)
        response = api.post(
            "/v1/stacks",
            json={
                "name": "app",
                "compose": "services:\n  web:\n    image: nginx\n",
                "rancher_compose": f"services:\n  web:\n    scale: {CONTAINERS}\n",
            },
        )
        assert response.status_code == 201, response.text
        web = response.json()["services"][0]["id"]
        agent.until(_all_addressed(CONTAINERS))
        hosts = {c["host_id"] for c in agent.containers().values()}
        assert len(hosts) > HOSTS // 2  # spread over the environment: most hosts are someone's peer with records

        before = len(agent.sizes)
        assert api.post(f"/v1/services/{web}/scale", json={"scale": CONTAINERS + 1}).status_code == 200
        agent.until(_all_addressed(CONTAINERS + 1))
        scaled = agent.sizes[before:]
        assert scaled and all(is_delta for is_delta, _ in scaled), scaled
        delta_bytes = sum(size for _, size in scaled)

        held = full_state(agent.parts) if agent.parts is not None else {}
        sockets[0].send_text(protocol.Message(protocol.ACK, {"network": agent.version, "resync": True}).encode())
        full = agent.receive()  # a gap: the full state again, exactly what the deltas built
        assert "base" not in full and agent.sizes[-1][0] is False
        full_bytes = agent.sizes[-1][1]
        assert {k: v for k, v in full.items() if k != "version"} == held
        print(f"network: full state {full_bytes} B; scale-by-one deltas {delta_bytes} B in {len(scaled)} messages")
        assert delta_bytes * 50 < full_bytes

        assert api.post(f"/v1/services/{web}/scale", json={"scale": CONTAINERS}).status_code == 200
        agent.until(lambda held: len(held) == CONTAINERS)
        assert agent.sizes[-1][0]  # scaling down is a delta too (the removed slot id)


def test_an_agent_that_does_not_ask_gets_full_states(api: TestClient) -> None:
    cred = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(cred["access_key"], cred["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS, "deltas": True}).encode())
        response = api.post("/v1/stacks", json={"name": "app", "compose": "services:\n  web:\n    image: nginx\n"})
        assert response.status_code == 201, response.text
        for _ in range(50):
            message = protocol.decode(ws.receive_text())
            if message.type != protocol.NETWORK:
                continue
            assert "base" not in message.data and "version" not in message.data
            if message.data["containers"] and message.data["containers"][0]["ip"]:
                break
        assert len(message.data["containers"]) == 1
