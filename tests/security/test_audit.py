"""The audit log: who did what from where with which result, paged, bounded by age and rows, and no body."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from corral.server.security.audit import prune
from tests.security.conftest import People


def test_entries_name_the_actor_and_result_and_page_back_in_time(api: TestClient, people: People) -> None:
    member = people.by_role["member"]
    api.post("/v1/environments/default/registration-tokens", json={"description": "from the member"}, headers=member)
    api.post("/v1/environments/default/registration-tokens", json={}, headers=people.by_role["read-only"])
    entries = api.get("/v1/audit", params={"environment": "default", "limit": 2}).json()
    newest, before = entries["data"], entries["next"]
    assert [(e["actor"], e["auth_kind"], e["status"]) for e in newest] == [
        ("u-read-only", "session", 403),
        ("u-member", "session", 201),
    ]
    assert newest[1]["action"] == "POST /v1/environments/{ref}/registration-tokens"
    assert newest[1]["address"] == "testclient" and "from the member" not in str(newest)
    older = api.get("/v1/audit", params={"environment": "default", "limit": 2, "before": before}).json()["data"]
    assert older and all(e["id"] < before for e in older)
    assert api.get("/v1/audit", params={"environment": "default"}, headers=people.by_role["owner"]).status_code == 200
    assert api.get("/v1/audit", params={"environment": "default"}, headers=member).status_code == 403


def test_retention_drops_old_entries_and_keeps_at_most_the_newest_rows(api: TestClient, people: People) -> None:
    state = api.app.state  # type: ignore[attr-defined]
    total = len(api.get("/v1/audit", params={"limit": 500}).json()["data"])
    assert total > 5
    state.settings = state.settings.model_copy(update={"audit_max_rows": 5})
    assert prune(state) == total - 5
    remaining = api.get("/v1/audit", params={"limit": 500}).json()["data"]
    assert len(remaining) == 5
    state.settings = state.settings.model_copy(update={"audit_retention_days": 0.0})
    time.sleep(0.01)
    prune(state)
    assert api.get("/v1/audit", params={"limit": 500}).json()["data"] == []


def test_exec_sessions_are_recorded_even_when_refused(api: TestClient, people: People) -> None:
    from starlette.websockets import WebSocketDisconnect

    try:
        with api.websocket_connect("/v1/containers/c-none/exec?cmd=sh", headers=people.by_role["member"]) as ws:
            ws.receive_text()
    except WebSocketDisconnect:
        pass
    entry = api.get("/v1/audit", params={"user": "u-member"}).json()["data"][0]
    assert (entry["action"], entry["status"]) == ("WS /v1/containers/{container_id}/exec", 404)
    assert entry["resource"] == "/v1/containers/c-none/exec"


def test_a_key_s_last_use_is_recorded(api: TestClient, people: People) -> None:
    from tests.api.conftest import basic

    owner = people.by_role["owner"]
    key = api.post("/v1/keys", json={"description": "ci", "expires": "30d"}, headers=owner).json()
    assert key["last_used_at"] is None and key["expires_at"] > time.time() + 29 * 86400
    assert api.get("/v1/me", headers=basic(key["access_key"], key["secret_key"])).status_code == 200
    deadline = time.monotonic() + 10
    while not next(k for k in api.get("/v1/keys", headers=owner).json()["data"])["last_used_at"]:
        assert time.monotonic() < deadline, "the last use was never written"
        time.sleep(0.05)


def test_the_actor_of_account_environment_and_service_keys(api: TestClient, people: People) -> None:
    from tests.api.conftest import basic

    owner = people.by_role["owner"]
    account = api.post("/v1/keys", json={}, headers=owner).json()
    environment = api.post("/v1/environments/default/keys", json={"role": "member"}, headers=owner).json()
    for key, description in ((account, "by-account"), (environment, "by-environment-key")):
        headers = basic(key["access_key"], key["secret_key"])
        body = {"description": description}
        assert api.post("/v1/environments/default/registration-tokens", json=body, headers=headers).status_code == 201
    entries = api.get("/v1/audit", params={"environment": "default", "limit": 2}).json()["data"]
    assert [(e["actor"], e["auth_kind"], e["access_key"]) for e in entries] == [
        ("u-owner", "environment", environment["access_key"]),
        ("u-owner", "account", account["access_key"]),
    ]


def test_secrets_sent_in_bodies_never_reach_the_audit_log(api: TestClient, people: People) -> None:
    """A change carrying a secret (a secret's value, a registry password, a user's password, a certificate's
    key) is recorded with its actor and result, and none of the secrets is in any entry."""
    owner = people.by_role["owner"]
    secrets = ("s3cret-value-9c1d", "registry-pw-5e2a", "new-user-pw-7b3f")
    assert (
        api.post(
            "/v1/environments/default/secrets", json={"name": "db", "value": secrets[0]}, headers=owner
        ).status_code
        == 201
    )
    registry = {"server": "r.example.com", "username": "bot", "password": secrets[1]}
    assert api.post("/v1/environments/default/registries", json=registry, headers=owner).status_code == 201
    assert api.post("/v1/users", json={"username": "newbie", "password": secrets[2]}).status_code == 201
    assert api.post("/v1/login", json={"username": "newbie", "password": secrets[2]}).status_code == 201
    entries = api.get("/v1/audit", params={"limit": 500}).json()["data"]
    actions = {(e["actor"], e["action"], e["status"]) for e in entries}
    assert ("u-owner", "POST /v1/environments/{ref}/secrets", 201) in actions
    assert ("u-owner", "POST /v1/environments/{ref}/registries", 201) in actions
    assert ("newbie", "POST /v1/login", 201) in actions
    text = str(entries)
    assert not [secret for secret in secrets if secret in text]
