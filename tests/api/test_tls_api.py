"""The TLS routes in-process: the CA for anyone, join tokens that carry its digest, registration with either form
of the token, and certificate rotation for admins only."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from corral.model.join_token import ca_digest_of_pem, ca_digests_of_bundle, parse_join_token

FACTS = {"hostname": "h", "arch": "x86_64", "cpus": 1, "memory_bytes": 2**30, "os": "linux"}


def test_the_ca_is_public_and_its_digest_is_in_every_join_token(api: TestClient) -> None:
    response = api.get("/v1/ca", headers={"Authorization": ""})
    assert response.status_code == 200
    digest = ca_digest_of_pem(response.text)
    assert response.headers["x-corral-ca-digest"] == digest
    created = api.post("/v1/environments/default/registration-tokens", json={}).json()
    token = parse_join_token(created["token"])
    assert token.ca_digest == digest and created["token"].startswith("CORRAL1-")
    assert created["command"] == f"corral agent --url {created['url']} --token {created['token']}"


def test_registration_takes_the_join_token_or_its_plain_secret(api: TestClient) -> None:
    created = api.post("/v1/environments/default/registration-tokens", json={}).json()
    secret = parse_join_token(created["token"]).secret
    for name, token in (("joined", created["token"]), ("plain", secret)):
        body = {"token": token, "name": name, "facts": FACTS}
        assert api.post("/v1/agent/register", json=body, headers={"Authorization": ""}).status_code == 201
    malformed = {"token": "CORRAL1-abc-" + secret, "name": "bad", "facts": FACTS}
    refused = api.post("/v1/agent/register", json=malformed, headers={"Authorization": ""})
    assert refused.status_code == 422 and "CORRAL1-<64 hex digits>-<secret>" in refused.json()["message"]


def test_rotation_is_for_admins_and_keeps_the_ca(api: TestClient) -> None:
    assert api.post("/v1/server/certificate/rotate", headers={"Authorization": ""}).status_code == 401
    before = api.get("/v1/server/certificate").json()
    after = api.post("/v1/server/certificate/rotate").json()
    assert after["serial"] != before["serial"] and after["ca_digest"] == before["ca_digest"]
    assert after["agents_reconnecting"] == 0
    assert api.get("/v1/server/certificate").json()["serial"] == after["serial"]


def test_ca_rotation_is_for_admins_and_without_agents_switches_at_once(api: TestClient) -> None:
    assert api.post("/v1/server/ca/rotate", headers={"Authorization": ""}).status_code == 401
    assert api.get("/v1/server/ca/rotation", headers={"Authorization": ""}).status_code == 401
    old = ca_digest_of_pem(api.get("/v1/ca").text)
    assert api.get("/v1/server/ca/rotation").json()["state"] == "idle"
    status = api.post("/v1/server/ca/rotate").json()
    assert status["state"] == "idle" and status["ca_digest"] != old and status["waiting_for"] == []
    new = ca_digest_of_pem(api.get("/v1/ca").text)
    assert new == status["ca_digest"] == api.get("/v1/server/certificate").json()["ca_digest"]
    created = api.post("/v1/environments/default/registration-tokens", json={}).json()
    assert parse_join_token(created["token"]).ca_digest == new


def test_ca_rotation_waits_for_each_connected_agent_to_pin_the_next_ca(api: TestClient) -> None:
    from corral.model import protocol
    from tests.api.conftest import basic
    from tests.api.test_api import _recv, register

    creds = register(api, "rotating-agent")
    old = ca_digest_of_pem(api.get("/v1/ca").text)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        facts = {"hostname": "edge", "arch": "amd64", "cpus": 1, "memory_bytes": 1 << 30}
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": facts}).encode())
        assert _recv(ws).type == protocol.WELCOME
        status = api.post("/v1/server/ca/rotate").json()
        assert status["state"] == "rotating" and status["waiting_for"] == [creds["host_id"]]
        assert status["ca_digest"] == old and status["next_ca_digest"] != old
        trust = _next(ws, protocol.TRUST)
        assert ca_digests_of_bundle(trust.data["ca"]) == [old, status["next_ca_digest"]]
        assert ca_digest_of_pem(api.get("/v1/ca").text) == old  # still the current CA until the agent confirms
        ws.send_text(protocol.Message(protocol.TRUSTED, {"digests": [old]}).encode())  # not the next one: no
        assert api.get("/v1/server/ca/rotation").json()["state"] == "rotating"
        ws.send_text(protocol.Message(protocol.TRUSTED, {"digests": [old, status["next_ca_digest"]]}).encode())
        final = _next(ws, protocol.TRUST)  # the new CA alone: the old one is dropped
        for _ in range(5):  # the bundle may be sent again (a repeated `trust` is harmless) before the switch
            if ca_digests_of_bundle(final.data["ca"]) != [old, status["next_ca_digest"]]:
                break
            final = _next(ws, protocol.TRUST)
        assert ca_digests_of_bundle(final.data["ca"]) == [status["next_ca_digest"]]
    done = api.get("/v1/server/ca/rotation").json()
    assert done["state"] == "idle" and done["ca_digest"] == status["next_ca_digest"]
    assert ca_digest_of_pem(api.get("/v1/ca").text) == done["ca_digest"]


def _next(ws: Any, kind: str) -> Any:
    """The next message of type `kind` (others, such as `desired` and `network`, may come first)."""
    from corral.model import protocol

    while True:
        message = protocol.decode(ws.receive_text())
        if message.type == kind:
            return message


def test_a_registration_that_fails_leaves_no_host_and_the_retry_registers(api: TestClient, monkeypatch: Any) -> None:
    """The host and its agent's key are one transaction: a database that fails between the two (503) must not
    leave a host without a key, whose name the agent's retry would find taken (409 for ever)."""
    from corral.model.errors import Unavailable
    from corral.store import repository

    created = api.post("/v1/environments/default/registration-tokens", json={}).json()
    body = {"token": created["token"], "name": "flaky", "facts": FACTS}
    real = repository._new_api_key_row

    def locked(*args: Any) -> Any:
        raise Unavailable("the server's database is unavailable (locked); try again shortly")

    monkeypatch.setattr(repository, "_new_api_key_row", locked)
    assert api.post("/v1/agent/register", json=body, headers={"Authorization": ""}).status_code == 503
    assert [h for h in api.get("/v1/hosts").json()["data"] if h["name"] == "flaky"] == []
    monkeypatch.setattr(repository, "_new_api_key_row", real)
    assert api.post("/v1/agent/register", json=body, headers={"Authorization": ""}).status_code == 201
