"""Environment certificates through the real API on a real database (issue 19 item 3): subject, SANs and expiry
shown, the key never in a response, event or log and sealed at rest, bad uploads refused naming the field, and the
key sent only to the host running a load balancer that names the certificate."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import select

from corral.model import protocol
from corral.server.security.tls import new_ca, new_server_certificate
from corral.store.tables import CertificateRow
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.api.test_secrets_api import next_desired


def pems(*sans: str) -> tuple[str, str]:
    ca, ca_key = new_ca()
    cert, key = new_server_certificate(ca, ca_key, list(sans))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def create(api: TestClient, name: str, cert: str, key: str) -> Any:
    return api.post("/v1/environments/default/certificates", json={"name": name, "cert": cert, "key": key})


def test_create_show_replace_remove_never_show_the_key(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cert, key = pems("a.example", "*.a.example")
    cert2, key2 = pems("a.example")
    secret_part = key.splitlines()[1]
    with api.websocket_connect("/v1/events", headers=api.admin_auth) as events:
        created = create(api, "site", cert, key)
        assert created.status_code == 201, created.text
        listed = api.get("/v1/environments/default/certificates")
        shown = api.get("/v1/environments/default/certificates/site")
        again = create(api, "site", cert, key)
        replaced = api.put("/v1/environments/default/certificates/site", json={"cert": cert2, "key": key2})
        removed = api.delete("/v1/environments/default/certificates/site")
        seen = [events.receive_json() for _ in range(3)]
    assert again.status_code == 409 and "already exists" in again.json()["message"]
    assert replaced.status_code == 200 and replaced.json()["sans"] == ["a.example"]
    assert removed.status_code == 204
    view = listed.json()["data"][0]
    assert (view["name"], view["subject"], view["sans"], view["warning"]) == (
        "site", "a.example", ["a.example", "*.a.example"], ""
    )  # fmt: skip
    assert view["not_after"] > view["not_before"] and shown.json()["fingerprint"] == view["fingerprint"]
    assert [(e["resource_type"], e["action"]) for e in seen] == [
        ("certificate", "created"), ("certificate", "updated"), ("certificate", "removed")
    ]  # fmt: skip
    everything = json.dumps([created.json(), listed.json(), shown.json(), again.json(), replaced.json(), seen])
    assert secret_part not in everything and "PRIVATE KEY" not in everything and '"key"' not in everything
    assert secret_part not in caplog.text
    assert api.delete("/v1/environments/default/certificates/site").status_code == 404


def test_bad_uploads_name_the_field_and_nothing_is_stored(api: TestClient) -> None:
    cert, key = pems("a.example")
    _, other_key = pems("b.example")
    wrong = create(api, "site", cert, other_key)
    assert wrong.status_code == 422 and wrong.json()["field"] == "key"
    assert "does not belong" in wrong.json()["message"]
    garbage = create(api, "site", "hello", key)
    assert garbage.status_code == 422 and garbage.json()["field"] == "cert"
    assert other_key.splitlines()[1] not in json.dumps([wrong.json(), garbage.json()])
    assert create(api, "../x", cert, key).status_code == 422
    assert api.get("/v1/environments/default/certificates").json()["data"] == []


COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["443:443"]
  web:
    image: corral/busybox:latest
"""
RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      certs: [other]
      default_cert: site
      port_rules:
      - {source_port: 443, target_port: 80, service: web, protocol: https}
"""


def test_the_key_goes_only_to_the_host_running_the_lb_that_names_it(api: TestClient, settings: Any) -> None:
    cert, key = pems("a.example")
    assert create(api, "site", cert, key).status_code == 201
    assert create(api, "unused", *pems("u.example")).status_code == 201
    with api.app.state.store.session() as session:  # type: ignore[attr-defined]
        row = session.scalars(select(CertificateRow)).first()
        assert row is not None and "PRIVATE KEY" not in row.key_encrypted and row.cert_pem.strip() == cert.strip()
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64"}}).encode())
        assert protocol.decode(ws.receive_text()).type == protocol.WELCOME
        assert "certificates" not in next_desired(ws).data
        body = {"name": "shop", "compose": COMPOSE, "rancher_compose": RANCHER}
        response = api.put("/v1/stacks", json=body)
        assert response.status_code == 201, response.text
        for _ in range(10):
            desired = next_desired(ws)
            if "certificates" in desired.data:
                break
        assert list(desired.data["certificates"]) == ["site"]  # `other` does not exist; `unused` is not named
        bundle = desired.data["certificates"]["site"]
        assert bundle.startswith(cert.strip()) and key.strip() in bundle
