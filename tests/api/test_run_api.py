"""Standalone containers (`POST /v1/containers`, issue 18) against fake agents: placed and pinned on one host,
listed with a `standalone` marker (and by their own id with `standalone=true`), stopped, started and removed; bad
input refused with the field named and nothing stored; rights as a service's containers; never moved off a lost
host."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.test_volumes_api import agent, eventually
from tests.security.conftest import add_user

RUN = {
    "name": "web",
    "image": "corral/busybox",
    "command": ["httpd", "-f", "-p", "80"],
    "env": {"GREETING": "hello"},
    "ports": ["8080:80"],
    "labels": {"team": "blue"},
    "restart": "always",
}


def standalone(api: TestClient) -> list[dict[str, Any]]:
    response = api.get("/v1/containers", params={"environment": "default", "standalone": "true"})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def slots(api: TestClient) -> list[Any]:
    return list(api.app.state.stacks.list_slots())  # type: ignore[attr-defined]


def beat(ws: Any) -> None:
    """A heartbeat: the fake agent sends none by itself, and its host must stay active for a placement."""
    ws.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())


def desired(ws: Any, check: Any) -> dict[str, Any]:
    """The next `desired` set (by name) that passes `check`."""
    while True:
        message = protocol.decode(ws.receive_text())
        if message.type != protocol.DESIRED:
            continue
        entries = {e["slot"]["stack"] + "/" + e["slot"]["service"]: e for e in message.data.get("containers", [])}
        if check(entries):
            return entries


def test_run_pins_a_container_lists_it_and_stops_starts_removes_it(api: TestClient) -> None:
    with agent(api, "one") as (one, one_id):
        eventually(lambda: api.get("/v1/hosts").json()["data"][0]["state"] == "active")
        beat(one)
        created = api.post("/v1/containers", json=RUN)
        assert created.status_code == 201, created.text
        view = created.json()
        assert (view["name"], view["standalone"], view["host"], view["restart"]) == ("web", True, "one", "always")
        assert view["env"] == ["GREETING"] and "hello" not in created.text  # values may be credentials
        run_id = view["id"]

        entries = desired(one, lambda e: "corral_standalone/web" in e)
        entry = entries["corral_standalone/web"]
        launch = entry["launch"]
        assert entry["slot"]["host_id"] == one_id and entry["running"] is True
        assert launch["environment"] == [["GREETING", "hello"]] and launch["restart"] == "always"
        assert launch["ports"][0]["host_port"] == 8080 and launch["command"] == ["httpd", "-f", "-p", "80"]

        assert [c["name"] for c in standalone(api)] == ["web"]
        listed = api.get("/v1/containers", params={"environment": "default"}).json()["data"]
        assert [(c["name"], c["standalone"]) for c in listed] == [("web", True)]
        assert api.get("/v1/containers", params={"standalone": "false"}).json()["data"] == []
        assert api.get("/v1/stacks").json()["data"] == []  # the hidden stack is no user's stack
        assert api.get("/v1/services").json()["data"] == []
        assert api.get(f"/v1/containers/{run_id}").json()["name"] == "web"

        stopped = api.post(f"/v1/containers/{run_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["desired"] == "stopped", stopped.text
        desired(one, lambda e: e.get("corral_standalone/web", {}).get("running") is False)
        started = api.post(f"/v1/containers/{run_id}/start")
        assert started.status_code == 200 and started.json()["desired"] == "running", started.text

        assert api.delete(f"/v1/containers/{run_id}").status_code == 204
        assert standalone(api) == []
        desired(one, lambda e: "corral_standalone/web" not in e)
        assert api.delete(f"/v1/containers/{run_id}").status_code == 404


def test_bad_runs_name_the_field_and_store_nothing(api: TestClient) -> None:
    with agent(api, "one") as (one, _):
        eventually(lambda: api.get("/v1/hosts").json()["data"][0]["state"] == "active")
        bad = [
            ({"name": "Web_1"}, "name"),
            ({"image": ""}, "image"),
            ({"image": "bad image"}, "image"),
            ({"restart": "sometimes"}, "restart"),
            ({"ports": ["80:eighty"]}, "ports"),
            ({"ports": ["8080:80", "8080:81"]}, "ports"),
            ({"env": {"1BAD": "x"}}, "env"),
            ({"command": "sleep 5"}, "command"),
            ({"labels": {"io.rancher.scheduler.global": "true"}}, "labels.io.rancher.scheduler.global"),
            ({"host": "nowhere"}, "host"),
        ]
        for change, field in bad:
            response = api.post("/v1/containers", json={**RUN, **change})
            assert response.status_code == 422, (change, response.text)
            assert response.json()["field"] == field, (change, response.json())
        assert api.post("/v1/containers", json={**RUN, "extra": 1}).status_code == 422
        assert standalone(api) == [] and slots(api) == []

        beat(one)
        assert api.post("/v1/containers", json=RUN).status_code == 201
        again = api.post("/v1/containers", json={**RUN, "ports": []})
        assert again.status_code == 409 and again.json()["field"] == "name", again.text
        taken = api.post("/v1/containers", json={**RUN, "name": "web2"})  # port 8080 is web's on the only host
        assert taken.status_code == 409 and taken.json()["field"] == "host", taken.text
        assert "8080" in taken.json()["message"]
        assert [c["name"] for c in standalone(api)] == ["web"]

        beat(one)
        unnamed = api.post("/v1/containers", json={"image": "corral/busybox:latest", "command": ["sleep", "60"]})
        assert unnamed.status_code == 201, unnamed.text
        assert unnamed.json()["name"].startswith("busybox-") and unnamed.json()["restart"] == "no"


def test_rights_are_a_service_containers_rights(api: TestClient) -> None:
    viewer = add_user(api, "viewer", "default", "read-only")  # before the agent: it sends no heartbeats
    restricted = add_user(api, "worker", "default", "restricted")
    with agent(api, "one") as (one, _):
        eventually(lambda: api.get("/v1/hosts").json()["data"][0]["state"] == "active")
        beat(one)
        assert api.post("/v1/containers", json=RUN, headers=viewer).status_code == 403
        created = api.post("/v1/containers", json=RUN, headers=restricted)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert api.get("/v1/containers", params={"standalone": "true"}, headers=viewer).status_code == 200
        assert api.post(f"/v1/containers/{run_id}/stop", headers=viewer).status_code == 403
        assert api.delete(f"/v1/containers/{run_id}", headers=viewer).status_code == 403
        assert api.delete(f"/v1/containers/{run_id}", headers=restricted).status_code == 204


def test_a_service_container_is_not_removed_as_a_standalone_one(api: TestClient) -> None:
    compose = "services:\n  web:\n    image: corral/busybox\n"
    with agent(api, "one") as (one, _):
        eventually(lambda: api.get("/v1/hosts").json()["data"][0]["state"] == "active")
        assert api.post("/v1/stacks", json={"name": "shop", "compose": compose}).status_code == 201

        def placed() -> Any:
            beat(one)
            return slots(api)[0] if slots(api) else None

        slot = eventually(placed)
        assert slot is not None
        beat(one)
        clash = api.post("/v1/containers", json={**RUN, "name": "shop-web-1"})  # the engine's name of shop's web
        assert clash.status_code == 409 and clash.json()["field"] == "name", clash.text
        refused = api.delete(f"/v1/containers/{slot.slot.id}")
        assert refused.status_code == 409 and "stack shop" in refused.json()["message"], refused.text
        assert [s.slot.id for s in slots(api)] == [slot.slot.id]


def test_a_lost_host_keeps_its_standalone_container(api: TestClient) -> None:
    with agent(api, "two"):
        with agent(api, "one") as (one, one_id):
            eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active", "active"])
            beat(one)
            created = api.post("/v1/containers", json={**RUN, "host": "one"})
            assert created.status_code == 201 and created.json()["host_id"] == one_id, created.text
            eventually(lambda: slots(api))
        lost = eventually(lambda: [c for c in standalone(api) if "not moved" in c["reason"]])
        assert lost, standalone(api)
        assert lost[0]["host"] == "one" and lost[0]["state"] == "unknown"
        assert [s.slot.host_id for s in slots(api)] == [one_id]  # still on the lost host, none on "two"
