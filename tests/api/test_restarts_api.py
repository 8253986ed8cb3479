"""Restarts through the in-process API with a fake agent that does what its desired set says: the request is
stored with the service (`restarting`, with its progress) and carried out by the orchestrator's passes in batches;
a second server on the same database carries a stored restart on; the rights are those of before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import protocol
from corral.server.app import create_app
from corral.server.bootstrap import open_store
from corral.server.security.tls import ServerTls
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_fast_paths import FACTS
from tests.security.conftest import add_user

COMPOSE = "services:\n  web:\n    image: nginx\n"
RANCHER = "services:\n  web:\n    scale: 3\n"


class Agent:
    """Runs what the stored desired state says (the fields the `desired` message carries: `running` and
    `start_requested_at`): stops what must not run, starts what was asked to start again, reports a snapshot."""

    def __init__(self, api: TestClient, ws: Any) -> None:
        self.api, self.ws = api, ws
        self.running: dict[str, bool] = {}
        self.started_at: dict[str, float] = {}
        self.starts: dict[str, int] = {}
        self.most_down = 0

    def step(self) -> None:
        stacks = self.api.app.state.stacks  # type: ignore[attr-defined]
        records = stacks.list_slots()
        for record in records:
            slot = record.slot.id
            if slot not in self.running:
                self.running[slot], self.started_at[slot], self.starts[slot] = True, 0.0, 0
            elif not record.running:
                self.running[slot] = False
            elif not self.running[slot] and record.start_requested_at > self.started_at[slot]:
                self.running[slot], self.started_at[slot] = True, record.start_requested_at
                self.starts[slot] += 1
        self.most_down = max(self.most_down, sum(1 for up in self.running.values() if not up))
        reports = [
            {
                "docker_id": f"d-{r.slot.id}",
                "name": r.slot.name,
                "image": "nginx",
                "state": "running" if self.running[r.slot.id] else "exited",
                "labels": {"io.corral.container": r.slot.id, "io.corral.config-hash": r.slot.config_hash},
            }
            for r in records
        ]
        self.ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": reports}).encode())
        time.sleep(0.05)


def _web(api: TestClient) -> dict[str, Any]:
    services = api.get("/v1/services", params={"include": "containers"}).json()["data"]
    return next(s for s in services if s["name"] == "web")


def _until(api: TestClient, agent: Agent, done: Any, steps: int = 600) -> dict[str, Any]:
    for _ in range(steps):
        agent.step()
        web = _web(api)
        if done(web):
            return web
    raise AssertionError(f"not reached: {_web(api)}")


def test_a_rolling_restart_is_stored_shown_and_carried_out_one_batch_at_a_time(api: TestClient) -> None:
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        agent = Agent(api, ws)
        web = _until(api, agent, lambda w: w["running"] == 3 and w["state"] == "active")
        assert web["restart"] is None

        viewer = add_user(api, "viewer", "default", "read-only")
        refused = api.post(f"/v1/services/{web['id']}/restart", json={"batch_size": 1}, headers=viewer)
        assert refused.status_code == 403
        assert _web(api)["state"] == "active"

        restarted = api.post(f"/v1/services/{web['id']}/restart", json={"batch_size": 1, "interval_ms": 0})
        assert restarted.status_code == 200, restarted.text
        assert restarted.json()["state"] == "restarting"
        stored = api.app.state.stacks.get_service(web["id"])  # type: ignore[attr-defined]
        assert stored.state == "restarting" and stored.upgrade["restart"]["batch_size"] == 1
        assert len(stored.upgrade["restart"]["pending"]) + len(stored.upgrade["restart"]["stopping"]) == 3
        change = api.put("/v1/stacks", json={"name": "app", "compose": COMPOSE.replace("nginx", "nginx:2")})
        assert change.status_code == 409 and "restarting" in change.json()["message"]

        seen = _until(api, agent, lambda w: w["state"] == "restarting" and w["restart"]["restarted"] >= 1)
        assert seen["restart"]["batch_size"] == 1 and seen["reason"].startswith("restarting app-web-"), seen
        _until(api, agent, lambda w: w["state"] == "active" and w["running"] == 3)
        assert agent.most_down == 1
        assert sorted(agent.starts.values()) == [1, 1, 1]

        container = web["containers"][0]["id"]
        one = api.post(f"/v1/containers/{container}/restart")
        assert one.status_code == 200, one.text
        assert _web(api)["state"] == "restarting"
        _until(api, agent, lambda w: w["state"] == "active" and w["running"] == 3)
        assert agent.starts[container] == 2 and sorted(agent.starts.values()) == [1, 1, 2]


@contextmanager
def _server(settings: Settings, auth: dict[str, str]) -> Iterator[TestClient]:
    store = open_store(settings)
    tls = ServerTls(settings.data_dir)
    tls.ensure(["localhost", "testserver"])
    with TestClient(create_app(settings, store, tls=tls), headers=auth) as client:
        yield client
    store.engine.dispose()


def test_a_stored_restart_is_carried_on_by_a_new_server(api: TestClient, settings: Settings) -> None:
    """The first server stops between batches (the agent stays connected to nothing meanwhile); the second one,
    on the same database, goes on from the stored progress: no container restarted twice or left stopped."""
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        agent = Agent(api, ws)
        web = _until(api, agent, lambda w: w["running"] == 3 and w["state"] == "active")
        api.post(f"/v1/services/{web['id']}/restart", json={"batch_size": 1, "interval_ms": 0})
        _until(api, agent, lambda w: w["restart"] is not None and w["restart"]["restarted"] == 1)
    api.__exit__(None, None, None)  # the first server stops
    auth = api.admin_auth  # type: ignore[attr-defined]
    agent_auth = basic(creds["access_key"], creds["secret_key"])
    with _server(settings, auth) as again, again.websocket_connect("/v1/agent", headers=agent_auth) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        assert _web(again)["state"] == "restarting"
        agent.api, agent.ws = again, ws
        _until(again, agent, lambda w: w["state"] == "active" and w["running"] == 3)
    assert sorted(agent.starts.values()) == [1, 1, 1]
    assert agent.most_down == 1
