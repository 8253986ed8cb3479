"""The REST API and the agent websocket in-process: authentication, validation, registration, liveness."""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from corral.model import protocol
from corral.server.bootstrap import ADMIN_ENV_FILE
from tests.api.conftest import basic


def register(api: TestClient, name: str = "edge-1", env: str = "default") -> dict[str, Any]:
    token = api.post(f"/v1/environments/{env}/registration-tokens", json={}).json()
    response = api.post(
        "/v1/agent/register",
        json={"token": token["token"], "name": name, "labels": {"zone": "a"}, "facts": {"arch": "amd64"}},
        headers={"Authorization": ""},
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "token": token}


def test_admin_env_file_is_private_and_matches(api: TestClient, settings) -> None:
    path = settings.data_dir / ADMIN_ENV_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().split())
    assert (
        api.get("/v1/environments", headers=basic(values["CORRAL_ACCESS_KEY"], values["CORRAL_SECRET_KEY"])).status_code
        == 200
    )
    bearer = {"Authorization": f"Bearer {values['CORRAL_ACCESS_KEY']}:{values['CORRAL_SECRET_KEY']}"}
    assert api.get("/v1/environments", headers=bearer).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": ""},
        {"Authorization": "Basic bm90OmtleQ=="},  # not:key
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Digest abc"},
    ],
)
def test_missing_or_wrong_key_is_401(api: TestClient, headers: dict[str, str]) -> None:
    response = api.get("/v1/hosts", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_wrong_secret_for_a_real_key_is_401(api: TestClient, settings) -> None:
    values = dict(line.split("=", 1) for line in (settings.data_dir / ADMIN_ENV_FILE).read_text().split())
    response = api.get("/v1/environments", headers=basic(values["CORRAL_ACCESS_KEY"], "wrong"))
    assert response.status_code == 401


def test_environment_lifecycle(api: TestClient) -> None:
    created = api.post("/v1/environments", json={"name": "prod", "description": "x"})
    assert created.status_code == 201
    assert created.json()["orchestration"] == "cattle"
    names = [e["name"] for e in api.get("/v1/environments").json()["data"]]
    assert names == ["default", "prod"]
    assert api.get("/v1/environments/prod").json()["id"] == created.json()["id"]
    assert api.delete(f"/v1/environments/{created.json()['id']}").status_code == 204
    assert api.get("/v1/environments/prod").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/v1/environments", {"name": "default"}, 409, "name"),
        ("post", "/v1/environments", {"name": "a;rm -rf /"}, 422, "name"),
        ("post", "/v1/environments", {"name": "$(reboot)"}, 422, "name"),
        ("post", "/v1/environments", {"name": "UPPER"}, 422, "name"),
        ("post", "/v1/environments", {"name": "x" * 64}, 422, "name"),
        ("post", "/v1/environments", {"name": 5}, 422, "name"),
        ("post", "/v1/environments", {}, 422, "name"),
        ("post", "/v1/environments", {"name": "ok", "colour": "red"}, 422, "colour"),
        ("post", "/v1/environments", {"name": "ok", "orchestration": "mesos"}, 422, "orchestration"),
        ("post", "/v1/environments", {"name": "ok", "orchestration": "swarm"}, 422, "orchestration"),
        ("post", "/v1/hosts", {"name": "h1", "environment": "nope"}, 404, "environment"),
        ("post", "/v1/hosts", {"name": "h`id`", "environment": "default"}, 422, "name"),
        ("post", "/v1/hosts", {"name": "h1", "environment": "default", "labels": {"a b": "c"}}, 422, "labels.a b"),
        ("post", "/v1/hosts", {"name": "h1", "environment": "default", "arch": "sparc"}, 422, "arch"),
        ("post", "/v1/hosts", {"name": "h1", "environment": "default", "driver": "ec2"}, 422, "driver"),
        ("get", "/v1/hosts?environment=nope", None, 404, "environment"),
        ("get", "/v1/hosts/host-000", None, 404, "host"),
        ("delete", "/v1/environments/nope", None, 404, "environment"),
        ("post", "/v1/environments/nope/registration-tokens", {}, 404, "environment"),
        ("delete", "/v1/registration-tokens/rt-x", None, 404, "token"),
    ],
)
def test_bad_input_is_4xx_naming_the_field(api: TestClient, method, path, body, status, field) -> None:
    response = getattr(api, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert response.json()["message"]


def test_malformed_json_is_422_naming_the_body(api: TestClient) -> None:
    response = api.post("/v1/environments", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["field"] == "body"


def test_unknown_route_is_json_404(api: TestClient) -> None:
    response = api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_registration_token_gives_command_and_dies_when_deleted(api: TestClient) -> None:
    token = api.post("/v1/environments/default/registration-tokens", json={}).json()
    assert token["command"] == f"corral agent --url {token['url']} --token {token['token']}"
    assert api.delete(f"/v1/registration-tokens/{token['id']}").status_code == 204
    response = api.post(
        "/v1/agent/register", json={"token": token["token"], "name": "late"}, headers={"Authorization": ""}
    )
    assert response.status_code == 403
    assert f"registration token {token['id']} was revoked" in response.json()["message"]
    assert api.get("/v1/hosts").json()["data"] == []


def test_forged_token_is_401(api: TestClient) -> None:
    token = api.post("/v1/environments/default/registration-tokens", json={}).json()["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = api.post("/v1/agent/register", json={"token": forged, "name": "x"}, headers={"Authorization": ""})
    assert response.status_code == 401


def test_duplicate_host_name_is_409(api: TestClient) -> None:
    register(api, "dup")
    token = api.post("/v1/environments/default/registration-tokens", json={}).json()["token"]
    response = api.post("/v1/agent/register", json={"token": token, "name": "dup"}, headers={"Authorization": ""})
    assert response.status_code == 409
    assert response.json()["field"] == "name"


def test_host_credentials_cannot_call_the_admin_api(api: TestClient) -> None:
    creds = register(api)
    agent = basic(creds["access_key"], creds["secret_key"])
    for method, path in [("get", "/v1/hosts"), ("get", "/v1/environments"), ("post", "/v1/environments")]:
        response = getattr(api, method)(path, headers=agent, **({"json": {"name": "evil"}} if method == "post" else {}))
        assert response.status_code == 403, path


def _recv(ws, *also_skip: str) -> protocol.Message:
    """The next message that is not a `network` state (those come on connect and whenever the overlay changes), nor
    of the other types given (a `desired` set may be pushed again at any time: the protocol is level-triggered)."""
    while True:
        message = protocol.decode(ws.receive_text())
        if message.type != protocol.NETWORK and message.type not in also_skip:
            return message


def test_agent_session_makes_host_active_and_reports_containers(api: TestClient) -> None:
    creds = register(api)
    host_id = creds["host_id"]
    assert api.get(f"/v1/hosts/{host_id}").json()["state"] == "registering"
    container = {"docker_id": "abc123", "name": "web", "image": "corral/busybox", "state": "running", "labels": {}}
    # the host's states after its agent leaves, as the events stream tells each change (polling could miss one on a
    # loaded machine: the reconnect grace is 3 s here)
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
            facts = {"hostname": "edge", "arch": "arm64", "cpus": 4, "memory_bytes": 1 << 30, "engine_version": "20.10"}
            ws.send_text(protocol.Message(protocol.HELLO, {"facts": facts}).encode())
            welcome = _recv(ws)
            assert welcome.type == protocol.WELCOME
            assert welcome.data["host_id"] == host_id
            desired = _recv(ws)  # the full desired set follows every hello, even when it is empty
            assert (desired.type, desired.data["containers"]) == (protocol.DESIRED, [])
            assert isinstance(desired.data["revision"], float)  # acknowledged by `converged` (occupancy.py)
            ws.send_text(protocol.Message(protocol.CONVERGED, {"revision": desired.data["revision"]}).encode())
            ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": [container]}).encode())
            ws.send_text(protocol.Message("bogus", {}).encode())
            reply = _recv(ws, protocol.DESIRED)
            assert reply.type == protocol.ERROR and "bogus" in reply.data["message"]
            ws.send_text("not json at all")
            assert _recv(ws, protocol.DESIRED).type == protocol.ERROR
            deadline = time.monotonic() + 10  # reports are applied by the host's own task (hub/report_backlog.py)
            while (host := api.get(f"/v1/hosts/{host_id}").json())["container_count"] != 1:
                assert time.monotonic() < deadline, host
                time.sleep(0.05)
            assert host["state"] == "active"
            assert host["arch"] == "aarch64"
            assert host["labels"] == {"zone": "a"}
            assert api.get(f"/v1/hosts/{host_id}/containers").json()["data"][0]["name"] == "web"
        states: list[str] = []
        while "disconnected" not in states:  # (pytest's timeout ends a wait that never sees it)
            event = events.receive_json()
            if event["resource_type"] == "host" and event["data"].get("id") == host_id:
                states.append(event["data"]["state"])
    assert states[-2:] == ["reconnecting", "disconnected"]
    assert api.get(f"/v1/hosts/{host_id}").json()["state"] == "disconnected"


def test_agent_with_bad_credentials_is_closed_4401(api: TestClient) -> None:
    with (
        api.websocket_connect("/v1/agent", headers=basic("HNOPE", "nope")) as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_text()
    assert info.value.code == protocol.CLOSE_BAD_CREDENTIALS


def test_admin_key_cannot_pose_as_an_agent(api: TestClient) -> None:
    with api.websocket_connect("/v1/agent", headers=api.admin_auth) as ws, pytest.raises(WebSocketDisconnect) as info:
        ws.receive_text()
    assert info.value.code == protocol.CLOSE_BAD_CREDENTIALS


def test_removed_host_loses_its_credentials(api: TestClient) -> None:
    creds = register(api)
    assert api.delete(f"/v1/hosts/{creds['host_id']}").status_code == 204
    with (
        api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_text()
    assert info.value.code == protocol.CLOSE_BAD_CREDENTIALS


def test_labels_are_editable_and_validated(api: TestClient) -> None:
    host_id = register(api)["host_id"]
    response = api.patch(f"/v1/hosts/{host_id}", json={"labels": {"role": "db", "io.corral.tier": "1"}})
    assert response.status_code == 200
    assert api.get(f"/v1/hosts/{host_id}").json()["labels"] == {"role": "db", "io.corral.tier": "1"}
    assert api.patch(f"/v1/hosts/{host_id}", json={"labels": {"x": 1}}).status_code == 422
    assert api.get(f"/v1/hosts/{host_id}").json()["labels"] == {"role": "db", "io.corral.tier": "1"}


def test_events_stream_reports_changes(api: TestClient) -> None:
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        api.post("/v1/environments", json={"name": "staging"})
        event = events.receive_json()
        assert (event["resource_type"], event["action"], event["data"]["name"]) == ("environment", "created", "staging")


def test_events_stream_needs_a_key(api: TestClient) -> None:
    with (
        api.websocket_connect("/v1/events", headers={"Authorization": ""}) as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_text()
    assert info.value.code == 4401


def test_local_driver_absent_is_503_not_500(api: TestClient) -> None:
    response = api.post("/v1/hosts", json={"name": "h1", "environment": "default"})
    assert response.status_code == 503
    assert "local host driver" in response.json()["message"]


def test_openapi_lists_the_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/environments", "/v1/hosts", "/v1/hosts/{host_id}", "/v1/agent/register"} <= set(paths)


def test_host_deactivate_evacuate_activate(api: TestClient) -> None:
    host_id = register(api)["host_id"]
    assert api.get(f"/v1/hosts/{host_id}").json()["schedulable"] is True
    cordoned = api.post(f"/v1/hosts/{host_id}/deactivate").json()
    assert (cordoned["schedulable"], cordoned["evacuating"]) == (False, False)
    evacuating = api.post(f"/v1/hosts/{host_id}/evacuate").json()
    assert (evacuating["schedulable"], evacuating["evacuating"]) == (False, True)
    active = api.post(f"/v1/hosts/{host_id}/activate").json()
    assert (active["schedulable"], active["evacuating"]) == (True, False)
    assert api.post("/v1/hosts/host-nope/deactivate").status_code == 404


def test_declared_arch_wins_over_the_engine(api: TestClient, settings) -> None:
    creds = register(api)
    from corral.server.bootstrap import open_store

    store = open_store(settings)
    store.update_host(creds["host_id"], driver_options={"arch": "arm64"})
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "x86_64"}}).encode())
        assert _recv(ws).type == protocol.WELCOME
    assert api.get(f"/v1/hosts/{creds['host_id']}").json()["arch"] == "aarch64"
    store.engine.dispose()
