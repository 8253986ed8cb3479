"""Private registry credentials through the real API on a real database: validation, conflicts, the password never
in a response or an event, encrypted at rest, and handed to the environment's agents only."""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from corral.model import protocol
from corral.store.registries import KEY_FILE
from corral.store.tables import RegistryRow
from tests.api.conftest import basic
from tests.api.test_api import register

PASSWORD = "s3cret-Pa55word-for-tests"


def add(api: TestClient, server: str = "registry.example.com:5000", env: str = "default", **extra: Any) -> Any:
    body = {"server": server, "username": "alice", "password": PASSWORD, **extra}
    return api.post(f"/v1/environments/{env}/registries", json=body)


def next_desired(ws: Any) -> protocol.Message:
    for _ in range(20):  # `network` messages come too; a desired set follows every hello and every change
        message = protocol.decode(ws.receive_text())
        if message.type == protocol.DESIRED:
            return message
    raise AssertionError("no desired message among the next 20")


def test_create_list_get_delete_never_show_the_password(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        created = add(api, server="Registry.Example.com:5000")
        assert created.status_code == 201, created.text
        registry = created.json()
        assert registry["server"] == "registry.example.com:5000"  # one spelling, as image references match it
        assert registry["username"] == "alice"
        listed = api.get("/v1/environments/default/registries")
        fetched = api.get(f"/v1/registries/{registry['id']}")
        updated = api.put(f"/v1/registries/{registry['id']}", json={"username": "bob", "password": PASSWORD + "2"})
        assert updated.status_code == 200 and updated.json()["username"] == "bob"
        removed = api.delete(f"/v1/registries/{registry['id']}")
        assert removed.status_code == 204
        seen = [events.receive_json() for _ in range(3)]
    assert [(e["resource_type"], e["action"]) for e in seen] == [
        ("registry", "created"),
        ("registry", "updated"),
        ("registry", "removed"),
    ]
    assert [r["id"] for r in listed.json()["data"]] == [registry["id"]]
    everything = json.dumps([registry, listed.json(), fetched.json(), updated.json(), seen])
    assert PASSWORD not in everything
    assert "password" not in everything
    assert PASSWORD not in caplog.text
    assert api.get(f"/v1/registries/{registry['id']}").status_code == 404


def test_password_is_encrypted_at_rest_under_a_private_key(api: TestClient, settings) -> None:
    assert add(api).status_code == 201
    with api.app.state.store.session() as session:  # type: ignore[attr-defined]
        row = session.scalars(select(RegistryRow)).one()
        stored = row.password_encrypted
    assert stored and PASSWORD not in stored
    key = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    [credential] = api.app.state.registries.credentials(row.environment_id)  # type: ignore[attr-defined]
    assert credential.password == PASSWORD
    assert PASSWORD not in repr(credential)


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("https://registry.example.com", "scheme"),
        ("registry.example.com/path", "host[:port]"),
        ("registry.example.com:99999", "port"),
        ("registry.example.com:abc", "port"),
        ("", "empty"),
        ("bad_host!", "not a host name"),
    ],
)
def test_a_bad_server_is_422_naming_the_field(api: TestClient, server: str, says: str) -> None:
    response = add(api, server=server)
    assert response.status_code == 422
    assert response.json()["field"] == "server"
    assert says in response.json()["message"]
    assert api.get("/v1/environments/default/registries").json()["data"] == []


def test_missing_password_is_422_and_the_password_is_never_echoed(api: TestClient) -> None:
    response = api.post("/v1/environments/default/registries", json={"server": "r.example.com", "username": "a"})
    assert (response.status_code, response.json()["field"]) == (422, "password")
    response = add(api, username="")
    assert (response.status_code, response.json()["field"]) == (422, "username")
    assert PASSWORD not in response.text
    response = add(api, server="r.example.com", surprise=1)
    assert response.status_code == 422 and PASSWORD not in response.text


def test_duplicate_server_in_one_environment_is_409_other_environments_are_separate(api: TestClient) -> None:
    assert add(api).status_code == 201
    again = add(api, server="REGISTRY.example.com:5000")
    assert again.status_code == 409 and again.json()["field"] == "server"
    assert api.post("/v1/environments", json={"name": "staging"}).status_code == 201
    assert add(api, env="staging").status_code == 201
    assert len(api.get("/v1/environments/staging/registries").json()["data"]) == 1
    assert add(api, env="nowhere").status_code == 404


def test_a_host_receives_only_the_credentials_its_own_desired_set_needs(api: TestClient) -> None:
    assert api.post("/v1/environments", json={"name": "other"}).status_code == 201
    assert add(api, env="other", server="other.example.com").status_code == 201
    registry = add(api).json()
    assert add(api, server="unused.example.com").status_code == 201
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64"}}).encode())
        assert protocol.decode(ws.receive_text()).type == protocol.WELCOME
        desired = next_desired(ws)
        assert desired.data["containers"] == [] and "registries" not in desired.data  # it pulls nothing
        compose = "services:\n  app:\n    image: registry.example.com:5000/team/app:1\n  hub:\n    image: busybox\n"
        assert api.put("/v1/stacks", json={"name": "private", "compose": compose}).status_code == 201
        for _ in range(10):
            desired = next_desired(ws)
            if len(desired.data["containers"]) == 2:
                break
        # only registry.example.com:5000: not the unused registry, not another environment's, none for Docker Hub
        assert desired.data["registries"] == [
            {"server": "registry.example.com:5000", "username": "alice", "password": PASSWORD}
        ]
        assert api.delete(f"/v1/registries/{registry['id']}").status_code == 204
        # removed: a desired set without them follows (one sent before the delete may still be on its way)
        assert any("registries" not in next_desired(ws).data for _ in range(3))
