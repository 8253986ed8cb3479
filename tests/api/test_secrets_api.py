"""Environment secrets and compose files with secrets, configs and uploaded relative binds, through the real API on a
real database: the value never in a response, event or log, sealed at rest, sent only to the hosts whose
containers name it, and the compose errors naming file, service and field with nothing stored."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from corral.model import protocol
from corral.model.files import MAX_UPLOAD_FILE_BYTES
from corral.store.tables import SecretRow
from tests.api.conftest import basic
from tests.api.test_api import register

VALUE = "db-Pa55word-9f3k-never-shown"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(api: TestClient, name: str = "db_password", value: str = VALUE, env: str = "default") -> Any:
    return api.post(f"/v1/environments/{env}/secrets", json={"name": name, "value": value})


def next_desired(ws: Any) -> protocol.Message:
    for _ in range(20):
        message = protocol.decode(ws.receive_text())
        if message.type == protocol.DESIRED:
            return message
    raise AssertionError("no desired message among the next 20")


def test_create_list_remove_never_show_the_value(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        created = create(api)
        assert created.status_code == 201, created.text
        listed = api.get("/v1/environments/default/secrets")
        again = create(api, value="other")
        removed = api.delete("/v1/environments/default/secrets/db_password")
        seen = [events.receive_json() for _ in range(2)]
    assert again.status_code == 409 and "already exists" in again.json()["message"]
    assert removed.status_code == 204
    assert [s["name"] for s in listed.json()["data"]] == ["db_password"]
    assert [(e["resource_type"], e["action"]) for e in seen] == [("secret", "created"), ("secret", "removed")]
    everything = json.dumps([created.json(), listed.json(), again.json(), seen])
    assert VALUE not in everything and "value" not in everything
    assert VALUE not in caplog.text
    assert api.delete("/v1/environments/default/secrets/db_password").status_code == 404


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("-bad", "x", "secret name '-bad' is invalid"),
        ("a/b", "x", "is invalid"),
        ("ok", "", "cannot be empty"),
    ],
)
def test_bad_secrets_are_refused(api: TestClient, name: str, value: str, says: str) -> None:
    response = create(api, name=name, value=value)
    assert response.status_code == 422 and says in response.json()["message"], response.text
    assert VALUE not in response.text
    assert api.get("/v1/environments/default/secrets").json()["data"] == []


def test_a_too_large_value_is_refused_without_echoing_it(api: TestClient) -> None:
    response = create(api, value="s" * (600 * 1024))
    assert response.status_code in (413, 422)
    assert "sss" not in response.text


def test_sealed_at_rest(api: TestClient) -> None:
    assert create(api).status_code == 201
    with api.app.state.store.session() as session:  # type: ignore[attr-defined]
        stored = session.scalars(select(SecretRow)).one().value_encrypted
    assert VALUE not in stored and stored


COMPOSE = """
services:
  app:
    image: busybox
    secrets:
      - db_password
      - source: api_key
        target: keys/api
        uid: "1000"
        mode: 0400
    configs: [app_conf]
    volumes: ["./conf/app.conf:/etc/app.conf:ro", "./static:/srv/static"]
  other:
    image: busybox
secrets:
  db_password: {external: true}
  api_key: {file: ./api.key}
configs:
  app_conf: {content: "listen 80"}
"""


def up(api: TestClient, **extra: Any) -> Any:
    uploads = {"conf/app.conf": b64("a = 1\n"), "static/index.html": b64("<h1>hi</h1>"), "api.key": b64("k-123")}
    body = {"name": "web", "compose": COMPOSE, "uploads": uploads, **extra}
    return api.put("/v1/stacks", json=body)


def test_compose_secrets_configs_and_uploads_reach_only_the_hosts_that_need_them(api: TestClient) -> None:
    refused = up(api)
    assert refused.status_code == 422
    assert "external secret db_password does not exist" in refused.json()["message"]
    assert api.get("/v1/stacks").json()["data"] == []  # nothing stored
    assert create(api).status_code == 201
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64"}}).encode())
        assert protocol.decode(ws.receive_text()).type == protocol.WELCOME
        assert "secrets" not in next_desired(ws).data
        response = up(api)
        assert response.status_code == 201, response.text
        for _ in range(10):
            desired = next_desired(ws)
            if len(desired.data["containers"]) == 2:
                break
        assert desired.data["secrets"] == {"db_password": VALUE, "web_api_key": "k-123"}
        app = next(c for c in desired.data["containers"] if c["slot"]["service"] == "app")
        other = next(c for c in desired.data["containers"] if c["slot"]["service"] == "other")
        assert "files" not in other["launch"]
        files = {f["target"]: f for f in app["launch"]["files"]}
        assert files["/run/secrets/db_password"] == {
            "kind": "secret", "source": "db_password", "target": "/run/secrets/db_password",
            "content": "", "uid": 0, "gid": 0, "mode": 0o444,
        }  # fmt: skip
        assert (files["/run/secrets/keys/api"]["uid"], files["/run/secrets/keys/api"]["mode"]) == (1000, 0o400)
        assert base64.b64decode(files["/app_conf"]["content"]) == b"listen 80"
        assert base64.b64decode(files["/etc/app.conf"]["content"]) == b"a = 1\n"
        assert base64.b64decode(files["/srv/static/index.html"]["content"]) == b"<h1>hi</h1>"
        assert [v["source"] for v in app["launch"]["volumes"]] == []
    secrets = [s["name"] for s in api.get("/v1/environments/default/secrets").json()["data"]]
    assert secrets == ["db_password", "web_api_key"]
    stack = api.get("/v1/stacks").json()["data"][0]
    assert any("mounted read-only at /srv/static" in w for w in stack["warnings"])
    for text in (json.dumps(stack), json.dumps(api.get(f"/v1/stacks/{stack['id']}").json())):
        assert VALUE not in text and "k-123" not in text
    assert api.delete(f"/v1/stacks/{stack['id']}").status_code == 204
    remaining = [s["name"] for s in api.get("/v1/environments/default/secrets").json()["data"]]
    assert remaining == ["db_password"]  # the stack's own secret went with it, the external one stays


@pytest.mark.parametrize(
    ("compose", "uploads", "says", "field"),
    [
        (
            "services:\n  a:\n    image: busybox\n    secrets: [nope]\n",
            {},
            "secret nope is not defined under the top-level secrets",
            "docker-compose.yml:services.a.secrets[0].source",
        ),
        (
            "services:\n  a:\n    image: busybox\n    volumes: ['./missing.conf:/etc/x']\n",
            {},
            "./missing.conf was not uploaded with the stack",
            "docker-compose.yml:services.a.volumes[0]",
        ),
        (
            "services:\n  a:\n    image: busybox\n    volumes: ['./big:/etc/x']\n",
            {"big": b64("x" * (MAX_UPLOAD_FILE_BYTES + 1))},
            "put larger data in a named volume",
            "uploads",
        ),
        (
            "services:\n  a:\n    image: busybox\n    configs: [c]\nconfigs:\n  c: {external: true}\n",
            {},
            "external configs are not supported",
            "docker-compose.yml:configs.c",
        ),
        (
            "services:\n  a:\n    image: busybox\n    secrets: [{source: s, mode: 'rwx'}]\nsecrets:\n"
            "  s: {external: true}\n",
            {},
            "mode 'rwx' is not an octal file mode",
            "docker-compose.yml:services.a.secrets[0].mode",
        ),
    ],
)
def test_bad_compose_files_name_file_service_and_field(
    api: TestClient, compose: str, uploads: dict[str, str], says: str, field: str
) -> None:
    response = api.put("/v1/stacks", json={"name": "bad", "compose": compose, "uploads": uploads})
    assert response.status_code == 422, response.text
    assert says in response.json()["message"]
    assert response.json()["field"] == field
    assert api.get("/v1/stacks").json()["data"] == []


def test_without_uploads_a_relative_bind_is_refused_as_before(api: TestClient) -> None:
    compose = "services:\n  a:\n    image: busybox\n    volumes: ['./data:/data']\n"
    response = api.put("/v1/stacks", json={"name": "rel", "compose": compose})
    assert response.status_code == 422
    assert "a relative host path needs the compose file's directory" in response.json()["message"]
