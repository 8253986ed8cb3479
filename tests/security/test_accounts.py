"""Local accounts kept by an admin: a password reset and a removal take effect at once (issue 16, "disable, delete,
reset"; disabling is tests/security/test_cves.py's CVE-2019-6287 row)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import basic
from tests.security.conftest import PASSWORD, People, login


def test_a_password_reset_ends_the_old_password_and_its_sessions_not_the_user_s_keys(
    api: TestClient, people: People
) -> None:
    member = people.by_role["member"]
    created = api.post("/v1/keys", json={"description": "ci"}, headers=member).json()
    account = basic(created["access_key"], created["secret_key"])
    assert api.patch("/v1/users/u-member", json={"password": "short"}).status_code == 422  # named field, no change
    assert login(api, "u-member")["Authorization"]
    reset = api.patch("/v1/users/u-member", json={"password": "a brand new password"})
    assert reset.status_code == 200 and "password" not in reset.text
    assert api.get("/v1/me", headers=member).status_code == 401  # the session made with the old password
    old = api.post("/v1/login", json={"username": "u-member", "password": PASSWORD}, headers={"Authorization": ""})
    assert old.status_code == 401
    fresh = login(api, "u-member", "a brand new password")
    assert api.get("/v1/stacks", params={"environment": "default"}, headers=fresh).status_code == 200
    assert api.get("/v1/me", headers=account).json()["username"] == "u-member"  # a key is not a password


def test_a_removed_user_s_sessions_and_keys_die_with_them_and_the_name_is_free(api: TestClient, people: People) -> None:
    owner = people.by_role["owner"]
    created = api.post("/v1/keys", json={}, headers=owner).json()
    account = basic(created["access_key"], created["secret_key"])
    env_key = api.post("/v1/environments/default/keys", json={"role": "member"}, headers=owner).json()
    environment = basic(env_key["access_key"], env_key["secret_key"])
    assert api.get("/v1/stacks", headers=environment).status_code == 200
    assert api.delete("/v1/users/u-owner").status_code == 204
    for headers in (owner, account, environment):
        assert api.get("/v1/stacks", params={"environment": "default"}, headers=headers).status_code == 401
    members = {m["name"] for m in api.get("/v1/environments/default/members").json()["data"]}
    assert "u-owner" not in members
    assert api.get("/v1/users/u-owner").status_code == 404
    assert api.delete("/v1/users/u-owner").status_code == 404
    assert api.post("/v1/users", json={"username": "u-owner", "password": PASSWORD}).status_code == 201
    again = login(api, "u-owner")  # a new user of the old name inherits nothing
    assert api.get("/v1/stacks", params={"environment": "default"}, headers=again).status_code == 404
