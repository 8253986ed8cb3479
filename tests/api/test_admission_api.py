"""Host admission through the real API on a real database: token expiry, uses (with a race for a one-time token),
revocation, listing without secrets, environments that require approval, and bounds on the facts a host reports."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from corral.model import protocol
from corral.store.tables import RegistrationTokenRow
from tests.api.conftest import basic

COMPOSE = "services:\n  web:\n    image: corral/busybox\n"
FACTS = {"hostname": "edge", "arch": "x86_64", "cpus": 2, "memory_bytes": 1 << 30, "engine_version": "24.0"}


def new_token(api: TestClient, env: str = "default", **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/environments/{env}/registration-tokens", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def register(api: TestClient, token: str, name: str, **extra: Any) -> Any:
    body = {"token": token, "name": name, "facts": FACTS, **extra}
    return api.post("/v1/agent/register", json=body, headers={"Authorization": ""})


def listed(api: TestClient, token_id: str, env: str = "default") -> dict[str, Any]:
    tokens = api.get(f"/v1/environments/{env}/registration-tokens").json()["data"]
    return dict(next(t for t in tokens if t["id"] == token_id))


def test_a_token_expires_after_24_hours_by_default_and_is_listed_without_its_secret(api: TestClient) -> None:
    token = new_token(api, description="rack 4")
    assert token["expires_at"] == pytest.approx(token["created_at"] + 24 * 3600, abs=5)
    assert (token["max_uses"], token["uses"], token["state"]) == (None, 0, "active")
    forever = new_token(api, expires="never", max_uses=3)
    assert (forever["expires_at"], forever["max_uses"]) == (None, 3)
    everything = api.get("/v1/environments/default/registration-tokens").json()["data"]
    assert {t["id"] for t in everything} == {token["id"], forever["id"]}
    secret = token["token"].partition(".")[2]
    assert secret and secret not in json.dumps(everything)
    assert all("token" not in t and "command" not in t for t in everything)
    assert listed(api, token["id"])["description"] == "rack 4"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"expires": "soon"}, "expires", "not a duration"),
        ({"expires": "0h"}, "expires", "more than 0"),
        ({"expires": "400d"}, "expires", "366 days"),
        ({"max_uses": 0}, "max_uses", "from 1"),
    ],
)
def test_bad_expiry_or_uses_is_422_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str, says: str
) -> None:
    response = api.post("/v1/environments/default/registration-tokens", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and says in response.json()["message"]
    assert api.get("/v1/environments/default/registration-tokens").json()["data"] == []


def test_an_expired_token_is_refused_saying_when_it_expired(api: TestClient) -> None:
    token = new_token(api, expires="2h")
    assert register(api, token["token"], "early").status_code == 201
    past = time.time() - 60
    with api.app.state.store.session() as session:  # type: ignore[attr-defined]
        session.execute(
            update(RegistrationTokenRow).where(RegistrationTokenRow.id == token["id"]).values(expires_at=past)
        )
    response = register(api, token["token"], "late")
    assert response.status_code == 403
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(past))
    assert response.json()["message"] == f"registration token {token['id']} expired at {stamp}"
    assert listed(api, token["id"])["state"] == "expired"
    assert [h["name"] for h in api.get("/v1/hosts").json()["data"]] == ["early"]


def test_max_uses_are_counted_and_a_refused_name_spends_none(api: TestClient) -> None:
    token = new_token(api, max_uses=2)
    assert register(api, token["token"], "m1").status_code == 201
    duplicate = register(api, token["token"], "m1")
    assert duplicate.status_code == 409  # refused after the use was counted: rolled back with the host
    assert listed(api, token["id"])["uses"] == 1
    assert register(api, token["token"], "m2").status_code == 201
    third = register(api, token["token"], "m3")
    assert third.status_code == 403
    assert third.json()["message"] == f"registration token {token['id']} has been used 2 of 2 times"
    assert {k: listed(api, token["id"])[k] for k in ("uses", "max_uses", "state")} == {
        "uses": 2,
        "max_uses": 2,
        "state": "used-up",
    }


def test_two_agents_racing_for_a_one_time_token_exactly_one_wins(api: TestClient) -> None:
    token = new_token(api, max_uses=1)["token"]
    racers = 6
    barrier = threading.Barrier(racers)
    statuses: list[int] = []

    def race(index: int) -> None:
        barrier.wait()
        statuses.append(register(api, token, f"racer-{index}").status_code)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] + [403] * (racers - 1)
    assert len(api.get("/v1/hosts").json()["data"]) == 1


def test_a_revoked_token_stays_listed_and_admits_nobody(api: TestClient) -> None:
    token = new_token(api)
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        revoked = api.post(f"/v1/registration-tokens/{token['id']}/revoke")
        assert revoked.status_code == 200
        event = events.receive_json()
    assert (event["resource_type"], event["action"], event["data"]["state"]) == (
        "registration_token",
        "revoked",
        "revoked",
    )
    assert token["token"] not in json.dumps(event)
    assert revoked.json()["state"] == "revoked" and revoked.json()["revoked_at"]
    response = register(api, token["token"], "nope")
    assert response.status_code == 403
    assert response.json()["message"].startswith(f"registration token {token['id']} was revoked at ")
    assert listed(api, token["id"])["state"] == "revoked"
    assert api.delete(f"/v1/registration-tokens/{token['id']}").status_code == 204  # again: idempotent
    assert api.post("/v1/registration-tokens/rt_nothing/revoke").status_code == 404
    assert api.get("/v1/hosts").json()["data"] == []


def _messages(ws: Any, count: int) -> list[protocol.Message]:
    return [protocol.decode(ws.receive_text()) for _ in range(count)]


def _next(ws: Any, kind: str, limit: int = 30) -> protocol.Message:
    for _ in range(limit):
        message = protocol.decode(ws.receive_text())
        if message.type == kind:
            return message
    raise AssertionError(f"no {kind} message among the next {limit}")


def test_a_pending_host_connects_but_gets_nothing_until_approved(api: TestClient) -> None:
    env = api.post("/v1/environments", json={"name": "guarded", "require_approval": True})
    assert env.status_code == 201 and env.json()["require_approval"] is True
    admitted = register(api, new_token(api, "guarded")["token"], "visitor")
    assert admitted.status_code == 201, admitted.text
    creds = admitted.json()
    host_id = creds["host_id"]
    host = api.get(f"/v1/hosts/{host_id}").json()
    assert (host["state"], host["state_reason"]) == ("pending", "waiting for approval")
    stack = api.put("/v1/stacks", json={"environment": "guarded", "name": "shop", "compose": COMPOSE})
    assert stack.status_code == 201, stack.text
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        welcome, desired = _messages(ws, 2)  # no `network` state between or before them: it is nobody's peer
        assert (welcome.type, desired.type) == (protocol.WELCOME, protocol.DESIRED)
        assert desired.data["containers"] == []
        ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": []}).encode())
        for _ in range(25):  # a few orchestrator passes (heartbeats keep it connected): still nothing placed on it
            ws.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())
            time.sleep(0.1)
        shown = api.get(f"/v1/hosts/{host_id}").json()
        assert (shown["state"], shown["state_reason"], shown["facts"]["cpus"]) == ("pending", "waiting for approval", 2)
        assert shown["overlay"]["slice"] == ""
        containers = api.get("/v1/containers", params={"environment": "guarded"}).json()["data"]
        assert not [c for c in containers if c.get("host_id") == host_id]
        with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
            ws.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())  # fresh within 0.4 s
            approved = api.post(f"/v1/hosts/{host_id}/approve")
            assert approved.status_code == 200, approved.text
            state = approved.json()["state"]
            for _ in range(50):  # its agent is connected: active at once, or at its next heartbeat on a slow machine
                if state == "active":
                    break
                ws.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())
                time.sleep(0.1)
                state = api.get(f"/v1/hosts/{host_id}").json()["state"]
            assert state == "active"
            seen = [events.receive_json() for _ in range(2)]
        assert ("host", "approved") in [(e["resource_type"], e["action"]) for e in seen]
        ws.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())
        network = _next(ws, protocol.NETWORK)
        assert network.data["host"]["slice"]
        for _ in range(30):
            desired = _next(ws, protocol.DESIRED)
            if desired.data["containers"]:
                break
        assert [c["slot"]["service"] for c in desired.data["containers"]] == ["web"]
    again = api.post(f"/v1/hosts/{host_id}/approve")
    assert again.status_code == 409 and "not waiting for approval" in again.json()["message"]


def test_approval_can_be_switched_off_and_on_and_rejecting_removes_the_host(api: TestClient) -> None:
    assert api.patch("/v1/environments/default", json={"require_approval": True}).json()["require_approval"] is True
    token = new_token(api)["token"]
    pending = register(api, token, "p1").json()["host_id"]
    assert api.get(f"/v1/hosts/{pending}").json()["state"] == "pending"
    assert api.delete(f"/v1/hosts/{pending}").status_code == 204  # rejected
    assert api.get(f"/v1/hosts/{pending}").status_code == 404
    assert api.patch("/v1/environments/default", json={"require_approval": False}).json()["require_approval"] is False
    direct = register(api, token, "p2").json()["host_id"]
    assert api.get(f"/v1/hosts/{direct}").json()["state"] == "registering"
    bad = api.patch("/v1/environments/default", json={"require_approval": "maybe"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("facts", "labels", "field"),
    [
        ({**FACTS, "hostname": "h" * 300}, {}, "facts.hostname"),
        ({**FACTS, "os": "Linux\x00"}, {}, "facts.os"),
        ({**FACTS, "cpus": -1}, {}, "facts.cpus"),
        ({**FACTS, "cpus": "4"}, {}, "facts.cpus"),
        ({**FACTS, "memory_bytes": 1 << 62}, {}, "facts.memory_bytes"),
        ({**FACTS, "arch": ["x86_64"]}, {}, "facts.arch"),
        ({**FACTS, **{f"extra{i}": 1 for i in range(70)}}, {}, "facts"),
        (FACTS, {f"k{i}": "v" for i in range(65)}, "labels"),
    ],
)
def test_out_of_bounds_facts_are_refused_at_registration(
    api: TestClient, facts: dict[str, Any], labels: dict[str, str], field: str
) -> None:
    token = new_token(api)
    response = register(api, token["token"], "bounded", facts=facts, labels=labels)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert api.get("/v1/hosts").json()["data"] == []
    assert listed(api, token["id"])["uses"] == 0


def test_a_hello_with_out_of_bounds_facts_gets_an_error_and_is_closed(api: TestClient) -> None:
    creds = register(api, new_token(api)["token"], "hello-bounds").json()
    with (
        api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {**FACTS, "memory_bytes": -5}}).encode())
        error = protocol.decode(ws.receive_text())
        assert error.type == protocol.ERROR and "facts.memory_bytes" in error.data["message"]
        ws.receive_text()
    assert closed.value.code == protocol.CLOSE_BAD_HELLO
    host = api.get(f"/v1/hosts/{creds['host_id']}").json()
    assert host["facts"]["memory_bytes"] == FACTS["memory_bytes"]  # what registration stored, untouched
    assert host["state"] == "registering"


def test_the_agent_command_uses_the_advertised_url(api: TestClient) -> None:
    """`tokens create` prints a URL another machine can use: the server's advertised one (CORRAL_ADVERTISE_URL, or
    its primary address when it listens on every interface), not the address this call happened to use."""
    settings = api.app.state.settings  # type: ignore[attr-defined]
    settings.advertise_url = "https://10.9.8.7:8080"
    token = new_token(api)
    assert token["url"] == "https://10.9.8.7:8080"
    assert token["command"] == f"corral agent --url https://10.9.8.7:8080 --token {token['token']}"
    assert token["token"].startswith("CORRAL1-")  # the CA pin travels in the token
    assert token["warning"] is None


def test_a_loopback_agent_command_comes_with_a_warning(api: TestClient) -> None:
    api.app.state.settings.advertise_url = "https://127.0.0.1:8080"  # type: ignore[attr-defined]
    token = new_token(api)
    assert token["command"].startswith("corral agent --url https://127.0.0.1:8080 --token CORRAL1-")
    assert "this machine only" in token["warning"] and "--host 0.0.0.0" in token["warning"]


def test_the_api_root_lists_the_collections(api: TestClient) -> None:
    """`make demo`'s banner prints `API: https://.../v1`: it answers an index, not 404 (and needs a key)."""
    assert api.get("/v1", follow_redirects=False).headers["location"].endswith("/v1/")
    index = api.get("/v1")
    assert index.status_code == 200, index.text
    assert index.json()["links"]["stacks"].endswith("/v1/stacks")
    assert index.json()["openapi"].endswith("/openapi.json")
    assert api.get("/v1/", headers={"Authorization": ""}).status_code == 401
