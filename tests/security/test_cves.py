"""One regression test per row of the CVE table (shared/REFERENCE.md A2), named by the CVE it must never repeat."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from corral.config import Settings
from corral.server.bootstrap import ensure_admin_key
from corral.store.repository import Store
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.security.conftest import PASSWORD, People, add_user, login

pytestmark = pytest.mark.usefixtures("people")


def test_cve_2017_7297_only_admins_change_users_and_server_settings(api: TestClient, people: People) -> None:
    owner = people.by_role["owner"]
    calls = [
        ("POST", "/v1/users", {"username": "mallory", "password": PASSWORD, "admin": True}),
        ("PATCH", "/v1/users/u-owner", {"admin": True}),
        ("DELETE", "/v1/users/u-member", None),
        ("POST", "/v1/server/certificate/rotate", {}),
        ("POST", "/v1/environments", {"name": "mine"}),
    ]
    for method, path, body in calls:
        assert api.request(method, path, json=body, headers=owner).status_code == 403, (method, path)
    assert api.get("/v1/me", headers=owner).json()["admin"] is False


def test_cve_2019_13209_websockets_refuse_foreign_origins_and_missing_credentials(
    api: TestClient, people: People
) -> None:
    owner = people.by_role["owner"]
    for headers, code in [
        ({**owner, "Origin": "https://evil.example"}, 4403),
        ({"Authorization": ""}, 4401),
        ({"Authorization": "", "Origin": "https://evil.example"}, 4403),
    ]:
        with (
            api.websocket_connect("/v1/events?environment=default", headers=headers) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_text()
        assert closed.value.code == code, headers


def test_cve_2019_11202_a_removed_bootstrap_admin_is_not_recreated(
    api: TestClient, people: People, settings: Settings
) -> None:
    api.post("/v1/users", json={"username": "root", "password": PASSWORD, "admin": True})
    root = login(api, "root")
    bootstrap_key = api.get("/v1/me").json()["access_key"]
    assert api.delete(f"/v1/keys/{bootstrap_key}", headers=root).status_code == 204
    assert api.get("/v1/environments").status_code == 401  # the client's default headers: the bootstrap key
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    assert ensure_admin_key(store, settings.data_dir) is None  # what a restart runs


def test_cve_2019_6287_removal_and_disabling_take_effect_at_once(api: TestClient, people: People) -> None:
    member = people.by_role["member"]
    assert api.get("/v1/stacks", params={"environment": "default"}, headers=member).status_code == 200
    assert api.delete("/v1/environments/default/members/user/u-member").status_code == 204
    assert api.get("/v1/stacks", params={"environment": "default"}, headers=member).status_code == 404
    owner = people.by_role["owner"]
    key = api.post("/v1/keys", json={"description": "ci"}, headers=owner).json()
    account = basic(key["access_key"], key["secret_key"])
    assert api.get("/v1/hosts", params={"environment": "default"}, headers=account).status_code == 200
    assert api.patch("/v1/users/u-owner", json={"disabled": True}).status_code == 200
    for headers in (owner, account):
        assert api.get("/v1/me", headers=headers).status_code == 401
    assert api.patch("/v1/users/u-owner", json={"disabled": False}).status_code == 200
    assert api.get("/v1/me", headers=owner).status_code == 401  # its session ended for good
    assert api.get("/v1/me", headers=account).status_code == 200
    assert api.delete(f"/v1/keys/{key['access_key']}", headers=account).status_code == 204
    assert api.get("/v1/me", headers=account).status_code == 401
    restricted = people.by_role["restricted"]
    created = api.post("/v1/environments/default/keys", json={"role": "restricted"}, headers=restricted).json()
    env_key = basic(created["access_key"], created["secret_key"])
    assert api.post("/v1/stacks", json={"environment": "default"}, headers=env_key).status_code == 422  # may write
    api.put("/v1/environments/default/members", json={"user": "u-restricted", "role": "read-only"})
    assert api.post("/v1/stacks", json={"environment": "default"}, headers=env_key).status_code == 403  # capped
    assert api.delete("/v1/environments/default/members/user/u-restricted").status_code == 204
    assert api.get("/v1/stacks", headers=env_key).status_code == 403  # its creator is gone from there
    assert api.post("/v1/logout", headers=people.by_role["read-only"]).status_code == 204
    assert api.get("/v1/me", headers=people.by_role["read-only"]).status_code == 401


def test_cve_2018_20321_host_credentials_reach_nothing_but_their_agent_socket(api: TestClient, people: People) -> None:
    host = register(api)
    agent = basic(host["access_key"], host["secret_key"])
    for method, path in [("GET", "/v1/environments"), ("GET", "/v1/me"), ("GET", "/v1/keys"), ("GET", "/v1/users")]:
        assert api.request(method, path, headers=agent).status_code == 403, path
    assert api.get(f"/v1/hosts/{host['host_id']}", headers=agent).status_code == 403


def test_cve_2021_31999_impersonation_headers_change_nothing(api: TestClient, people: People) -> None:
    read_only = people.by_role["read-only"]
    forged = {
        "Impersonate-User": "admin",
        "Impersonate-Group": "system:masters",
        "X-Remote-User": "admin",
        "X-Forwarded-User": "admin",
        "X-Corral-Forwarded-For": "127.0.0.1",
    }
    response = api.post("/v1/stacks", json={"name": "x", "compose": ""}, headers={**read_only, **forged})
    assert response.status_code == 403
    assert api.get("/v1/me", headers={**read_only, **forged}).json()["username"] == "u-read-only"
    assert api.get("/v1/users", headers={**read_only, **forged}).status_code == 403


def test_cve_2021_25320_knowing_an_id_in_another_environment_gives_nothing(api: TestClient, people: People) -> None:
    registry = api.post(
        "/v1/environments/other/registries", json={"server": "r.example.com", "username": "a", "password": "pw"}
    ).json()
    host = register(api, env="other")
    stranger_key = api.post("/v1/keys", json={}, headers=people.stranger).json()["access_key"]
    owner = people.by_role["owner"]
    for method, path in [
        ("GET", f"/v1/registries/{registry['id']}"),
        ("DELETE", f"/v1/registries/{registry['id']}"),
        ("GET", f"/v1/hosts/{host['host_id']}"),
        ("POST", f"/v1/hosts/{host['host_id']}/deactivate"),
        ("DELETE", f"/v1/registration-tokens/{host['token']['id']}"),
        ("GET", "/v1/environments/other"),
        ("GET", "/v1/environments/other/members"),
        ("DELETE", f"/v1/keys/{stranger_key}"),
    ]:
        assert api.request(method, path, headers=owner).status_code == 404, (method, path)
    names = [env["name"] for env in api.get("/v1/environments", headers=owner).json()["data"]]
    assert names == ["default"]
    assert api.get("/v1/audit", params={"environment": "other"}, headers=owner).status_code == 404


def test_cve_2022_31247_nobody_grants_a_role_above_their_own(api: TestClient, people: People) -> None:
    member = people.by_role["member"]
    assert (
        api.put(
            "/v1/environments/default/members", json={"user": "u-member", "role": "owner"}, headers=member
        ).status_code
        == 403
    )
    restricted = people.by_role["restricted"]
    for role in ("member", "owner"):
        response = api.post("/v1/environments/default/keys", json={"role": role}, headers=restricted)
        assert response.status_code == 403, role
    key = api.post("/v1/environments/default/keys", json={"role": "restricted"}, headers=restricted)
    assert key.status_code == 201
    env_key = basic(key.json()["access_key"], key.json()["secret_key"])
    assert api.get("/v1/stacks", headers=env_key).status_code == 200  # its own environment, implied
    assert api.get("/v1/hosts", params={"environment": "other"}, headers=env_key).status_code == 404
    assert api.post(f"/v1/hosts/{register(api)['host_id']}/deactivate", headers=env_key).status_code == 403
    assert api.post("/v1/environments/default/keys", json={"role": "member"}, headers=env_key).status_code == 403


def test_cve_2022_43755_keys_are_random_and_a_revoked_token_is_dead(api: TestClient, people: People) -> None:
    secrets = {api.post("/v1/keys", json={}, headers=people.by_role["owner"]).json()["secret_key"] for _ in range(5)}
    assert len(secrets) == 5 and all(len(s) >= 40 for s in secrets)
    token = api.post("/v1/environments/default/registration-tokens", json={}).json()
    assert api.post(f"/v1/registration-tokens/{token['id']}/revoke").status_code == 200
    body = {"token": token["token"], "name": "late", "facts": {"arch": "amd64"}}
    assert api.post("/v1/agent/register", json=body, headers={"Authorization": ""}).status_code in (401, 403)


def test_cve_2024_22030_join_tokens_pin_the_server_ca(api: TestClient, people: People) -> None:
    token = api.post("/v1/environments/default/registration-tokens", json={}).json()["token"]
    digest = api.app.state.tls.ca_digest  # type: ignore[attr-defined]
    assert token.startswith("CORRAL1-") and digest.removeprefix("sha256:") in token


def test_cve_2023_22649_secrets_stay_out_of_responses_audit_and_logs(
    api: TestClient, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-secret-passw0rd"
    assert api.post("/v1/users", json={"username": "carol", "password": secret}).status_code == 201
    api.post("/v1/login", json={"username": "carol", "password": secret + "x"}, headers={"Authorization": ""})
    session = login(api, "carol", secret)
    created = api.post("/v1/environments/default/keys", json={"role": "read-only"}).json()
    everything = [
        api.get("/v1/users").text,
        api.get("/v1/keys").text,
        api.get("/v1/environments/default/keys").text,
        api.get("/v1/audit", params={"limit": 500}).text,
        caplog.text,
    ]
    for text in everything:
        assert secret not in text
        assert created["secret_key"] not in text
        assert session["Authorization"].split()[-1] not in text
        assert "argon2" not in text
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        digest = connection.exec_driver_sql("select password_digest from users where username='carol'").scalar()
    assert isinstance(digest, str) and digest.startswith("$argon2") and secret not in digest


def test_cve_2022_43758_catalog_urls_cannot_inject_options(api: TestClient, people: People) -> None:
    for url in ("--upload-pack=touch /tmp/pwned", "ext::sh -c touch% /tmp/pwned", "-u/tmp/x"):
        response = api.post("/v1/catalogs", json={"name": "evil", "kind": "git", "url": url})
        assert response.status_code == 422, (url, response.text)


def test_cve_2021_25313_api_errors_are_json_and_pages_carry_a_csp(api: TestClient, people: People) -> None:
    response = api.get("/v1/environments/<script>alert(1)</script>")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")
    page = api.get("/healthz")
    assert page.headers["content-type"].startswith("application/json")
    assert add_user(api, "dave")  # a user name with markup is refused outright
    assert api.post("/v1/users", json={"username": "<b>x</b>", "password": PASSWORD}).status_code == 422
