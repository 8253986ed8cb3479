"""LDAP sign-in against a real OpenLDAP (slapd on loopback, StartTLS): a user whose group maps to `member`
signs in and deploys a stack; removing them from the group in the directory takes effect within the cache time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ldap3 import MODIFY_DELETE, Connection, Server, Tls

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store
from tests.api.conftest import basic
from tests.security.slapd import ROOT_DN, ROOT_PASSWORD, SUFFIX, USERS, Directory, slapd_bin, start_directory

COMPOSE = "services:\n  web:\n    image: corral/busybox\n"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    if slapd_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the LDAP tests: slapd is not installed (run `make setup`)")
        pytest.skip("slapd is not installed (run `make setup`)")
    running = start_directory(tmp_path_factory.mktemp("slapd"))
    yield running
    running.stop()


@pytest.fixture
def api(tmp_path: Path, directory: Directory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'corral.db'}",
        ldap_url=directory.url,
        ldap_ca_file=str(directory.ca_file),
        ldap_bind_dn=ROOT_DN,
        ldap_bind_password=ROOT_PASSWORD,
        ldap_user_base=f"ou=people,{SUFFIX}",
        ldap_group_base=f"ou=groups,{SUFFIX}",
        ldap_cache_seconds=0.5,
    )
    store = open_store(settings)
    access, secret = ensure_admin_key(store, settings.data_dir) or ("", "")
    ensure_default_environment(store)
    with TestClient(create_app(settings, store), headers=basic(access, secret)) as client:
        yield client
    store.engine.dispose()


def _login(api: TestClient, username: str, password: str) -> tuple[int, dict[str, str]]:
    response = api.post("/v1/login", json={"username": username, "password": password}, headers={"Authorization": ""})
    body = response.json()
    return response.status_code, basic(body["access_key"], body["secret_key"]) if response.status_code == 201 else {}


def test_a_directory_user_s_group_gives_the_role_until_the_directory_takes_it_away(
    api: TestClient, directory: Directory
) -> None:
    assert (
        api.put("/v1/environments/default/members", json={"group": "developers", "role": "member"}).status_code == 200
    )
    assert _login(api, "alice", "wrong password")[0] == 401
    assert _login(api, "nobody", "whatever-it-is")[0] == 401
    code, alice = _login(api, "alice", USERS["alice"])
    assert code == 201
    me = api.get("/v1/me", headers=alice).json()
    assert me["username"] == "alice" and [e["role"] for e in me["environments"]] == ["member"]
    deployed = api.put("/v1/stacks", json={"name": "app", "compose": COMPOSE, "environment": "default"}, headers=alice)
    assert deployed.status_code == 201, deployed.text
    assert (
        api.put(
            "/v1/environments/default/members", json={"group": "developers", "role": "owner"}, headers=alice
        ).status_code
        == 403
    )  # a member does not manage members

    code, bob = _login(api, "bob", USERS["bob"])  # in the directory, in no mapped group: sees nothing
    assert code == 201
    assert api.get("/v1/stacks", params={"environment": "default"}, headers=bob).status_code == 404
    users = {u["username"]: u for u in api.get("/v1/users").json()["data"]}
    assert users["alice"]["source"] == "ldap" and "password" not in str(users["alice"])

    tls = Tls(ca_certs_file=str(directory.ca_file))
    admin = Connection(Server(directory.url, tls=tls), ROOT_DN, ROOT_PASSWORD)
    admin.open()
    admin.start_tls()
    assert admin.bind()
    dn = f"uid=alice,ou=people,{SUFFIX}"
    assert admin.modify(f"cn=developers,ou=groups,{SUFFIX}", {"member": [(MODIFY_DELETE, [dn])]})
    admin.unbind()
    deadline = time.monotonic() + 10
    while api.get("/v1/stacks", params={"environment": "default"}, headers=alice).status_code != 404:
        assert time.monotonic() < deadline, "the group removal did not take effect within the cache time"
        time.sleep(0.2)
    code, again = _login(api, "alice", USERS["alice"])
    assert code == 201 and api.get("/v1/me", headers=again).json()["environments"] == []


def test_a_local_user_is_never_taken_from_the_directory(api: TestClient, directory: Directory) -> None:
    assert api.post("/v1/users", json={"username": "alice", "password": "local-alice-password"}).status_code == 201
    assert _login(api, "alice", USERS["alice"])[0] == 401  # the local password decides for a local user
    assert _login(api, "alice", "local-alice-password")[0] == 201
