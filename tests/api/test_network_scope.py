"""Scoped network states through the real application (model/network_scope.py, issue 15 item 3): agents that say
`network_scope` hold their own containers and what those name, a scale by one reaches only the hosts that hold the
service, and an agent's `demand` brings it a service's every container (or, "all", the whole environment)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import deltas, protocol
from corral.model.network_deltas import Parts, apply_network
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.api.test_fast_paths import FACTS
from tests.api.test_network_api import _wait_for

HOSTS = 4
COMPOSE = """\
services:
  web:
    image: nginx
  client:
    image: busybox
    external_links: ["app/web:w"]  # (links would order the start after web's, and no container here runs)
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=60.0, host_grace_seconds=600.0)


class ScopedAgent:
    """An agent's network side on its own thread: applies full states and deltas, acknowledges, counts bytes."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.version: int | None = None
        self.parts: Parts | None = None
        self.bytes = 0
        self.lock = threading.Lock()
        self.errors: queue.Queue[BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                raw = self.ws.receive_text()
                message = protocol.decode(raw)
                if message.type != protocol.NETWORK:
                    continue
                data = message.data
                with self.lock:
                    self.bytes += len(raw.encode())
                    if "base" in data:
                        assert self.parts is not None and not deltas.is_gap(self.version, data)
                        self.parts = apply_network(self.parts, data)
                    else:
                        self.parts = Parts.of(data)
                    self.version = data["version"]
                self.ws.send_text(protocol.Message(protocol.ACK, {"network": self.version}).encode())
        except Exception as exc:  # the socket closing at the end of the test ends the thread
            self.errors.put(exc)

    def held(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(fixed parts, containers, services, directory) as held now."""
        with self.lock:
            if self.parts is None:
                return {}, {}, {}, {}
            sections = self.parts.sections
            return (
                dict(self.parts.fixed),
                dict(sections["containers"]),
                dict(sections["services"]),
                dict(sections.get("directory", {})),
            )

    def host_id(self) -> str:
        return str(self.held()[0].get("host", {}).get("host_id", ""))

    def local(self) -> set[str]:
        _, containers, _, _ = self.held()
        return {c["name"] for c in containers.values() if c["host_id"] == self.host_id()}


def _placed(api: TestClient, count: int) -> dict[str, str] | None:
    """Container name -> host name, once `count` containers have overlay addresses."""
    found = {
        c["name"]: c["host"]
        for s in api.get("/v1/services").json()["data"]
        for c in api.get(f"/v1/services/{s['id']}").json()["containers"]
        if c.get("overlay_ip")
    }
    return found if len(found) == count else None


def test_scoped_agents_hold_what_they_need_and_ask_for_more(api: TestClient) -> None:
    creds = [register(api, name=f"s{i}") for i in range(HOSTS)]
    with contextlib.ExitStack() as stack:
        agents = []
        for cred in creds:
            ws = stack.enter_context(
                api.websocket_connect("/v1/agent", headers=basic(cred["access_key"], cred["secret_key"]))
            )
            hello = {"facts": FACTS, "deltas": True, "network_deltas": True, "network_scope": True}
            ws.send_text(protocol.Message(protocol.HELLO, hello).encode())
            agents.append(ScopedAgent(ws))
        response = api.post(
            "/v1/stacks",
            json={"name": "app", "compose": COMPOSE, "rancher_compose": "services:\n  web:\n    scale: 8\n"},
        )
        assert response.status_code == 201, response.text
        web = next(s["id"] for s in response.json()["services"] if s["name"] == "web")

        hosts_of = _wait_for("9 containers placed with addresses", lambda: _placed(api, 9))
        names = {a: a.held()[0]["host"]["name"] for a in agents}
        for agent in agents:
            mine = {n for n, host in hosts_of.items() if host == names[agent]}
            _wait_for(f"{names[agent]} holds its containers", lambda a=agent, m=mine: a.local() == m)
        webs = {n for n in hosts_of if n.startswith("app-web-")}
        for agent in agents:
            fixed, containers, services, directory = agent.held()
            assert fixed.get("scoped") is True
            assert set(directory) == {"app/web", "app/client"}
            held_names = {c["name"] for c in containers.values()}
            if "app-client-1" in agent.local():  # it links to web: every web container, web's record complete
                assert webs <= held_names
                assert services["app/web"].get("complete", True) is True and services["app/web"]["scale"] == 8
            else:  # only its own
                assert held_names == agent.local()
                assert all(s.get("complete") is False and s["scale"] == 0 for s in services.values())

        before = {a: a.bytes for a in agents}
        assert api.post(f"/v1/services/{web}/scale", json={"scale": 9}).status_code == 200
        hosts_of = _wait_for("the 10th container placed", lambda: _placed(api, 10))
        new_host = hosts_of["app-web-9"]
        holder = next(a for a in agents if names[a] == new_host)
        _wait_for("its host holds it", lambda: "app-web-9" in holder.local())
        time.sleep(1.0)  # the passes after the scale have gone out
        reached = {names[a] for a in agents if a.bytes != before[a]}
        client_host = hosts_of["app-client-1"]
        assert reached <= {new_host, client_host}, (reached, new_host, client_host)
        assert new_host in reached

        # a demand: an agent without the client asks for web (its DNS would) and gets every web container
        other = next(a for a in agents if names[a] != client_host)
        other.ws.send_text(protocol.Message(protocol.ACK, {"network": None, "demand": ["app/web"]}).encode())
        _wait_for(
            "the demanded service held whole",
            lambda: {c["name"] for c in other.held()[1].values()} >= webs | {"app-web-9"},
        )
        assert other.held()[2]["app/web"].get("complete", True) is True
        other.ws.send_text(protocol.Message(protocol.ACK, {"network": None, "demand": "all"}).encode())
        _wait_for("the unscoped state", lambda: not other.held()[0].get("scoped") and len(other.held()[1]) == 10)
        assert not other.held()[3]  # no directory in an unscoped state
        for agent in agents:
            assert agent.errors.empty(), agent.errors.get()
