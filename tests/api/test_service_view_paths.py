"""A service's own view (`scale`, `GET /v1/services/{id}`) is read from that service's rows and the reports of its
hosts only (server/stack_views.py `EnvironmentState.of_service`); it must show exactly what the view built from the
whole environment (`GET /v1/services`) shows, including which reported container belongs to which slot."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.conftest import basic
from tests.api.test_api import _recv, register

COMPOSE = "services:\n  web:\n    image: nginx\n  db:\n    image: redis\n"
RANCHER = "services:\n  web:\n    scale: 2\n"
FACTS = {"hostname": "edge", "arch": "x86_64", "cpus": 4, "memory_bytes": 1 << 30, "engine_version": "24.0"}


def _reported(slot: dict[str, Any], state: str, docker_id: str) -> dict[str, Any]:
    labels = {"io.corral.container": slot["id"], "io.corral.config-hash": slot["config_hash"]}
    return {"docker_id": docker_id, "name": docker_id, "image": "nginx", "state": state, "labels": labels}


def test_own_view_matches_the_environment_view(api: TestClient) -> None:
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        desired: list[dict[str, Any]] = []
        for _ in range(20):  # the desired set grows as the orchestrator places the stack
            message = _recv(ws)
            if message.type == protocol.DESIRED:
                desired = message.data["containers"]
                if len(desired) == 3:
                    break
        assert len(desired) == 3
        web = sorted((d["slot"] for d in desired if d["slot"]["service"] == "web"), key=lambda s: s["index"])
        db = next(d["slot"] for d in desired if d["slot"]["service"] == "db")
        stray = {"docker_id": "stray", "name": "stray", "image": "x", "state": "running", "labels": {}}
        reports = [_reported(web[0], "running", "w1"), _reported(web[1], "exited", "w2"), _reported(db, "running", "d")]
        ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": [*reports, stray]}).encode())
        service_id = next(s["id"] for s in stack.json()["services"] if s["name"] == "web")
        for _ in range(100):  # the snapshot is stored by the server's event loop, after this send returns
            own = api.get(f"/v1/services/{service_id}").json()
            if {c["docker_id"] for c in own["containers"]} == {"w1", "w2"}:
                break
        listed = next(s for s in api.get("/v1/services").json()["data"] if s["id"] == service_id)
        scaled = api.post(f"/v1/services/{service_id}/scale", json={"scale": 2})
        assert scaled.status_code == 200, scaled.text
    assert {(c["index"], c["docker_id"], c["state"]) for c in own["containers"]} == {
        (1, "w1", "running"),
        (2, "w2", "exited"),
    }
    assert (own["running"], own["scale"]) == (1, 2)
    for view in (listed, scaled.json()):
        assert {k: v for k, v in view.items() if k != "containers"} == {
            k: v for k, v in own.items() if k != "containers"
        }
        assert sorted(view["containers"], key=lambda c: c["id"]) == sorted(own["containers"], key=lambda c: c["id"])
