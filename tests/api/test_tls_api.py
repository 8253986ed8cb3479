"""The TLS routes in-process: the CA for anyone, join tokens that carry its digest, registration with either form
of the token, and certificate rotation for admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from corral.model.join_token import ca_digest_of_pem, parse_join_token

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
