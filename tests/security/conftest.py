"""The real application on SQLite, with one user per role in environment `default` and a stranger who owns
environment `other` only: what the security tests call routes as."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store
from corral.server.security.tls import ServerTls
from tests.api.conftest import basic, migrated_sqlite, sqlite_copy  # noqa: F401 - the session's template

PASSWORD = "correct horse battery"
ROLES = ("owner", "member", "restricted", "read-only")


@pytest.fixture
def settings(tmp_path: Path, migrated_sqlite: Path) -> Settings:  # noqa: F811
    # heartbeats of a minute: a test's fake agent stays connected without sending any
    return Settings(data_dir=tmp_path, database_url=sqlite_copy(migrated_sqlite, tmp_path), heartbeat_seconds=60)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    store = open_store(settings)
    access, secret = ensure_admin_key(store, settings.data_dir) or ("", "")
    ensure_default_environment(store)
    tls = ServerTls(settings.data_dir)
    tls.ensure(["localhost", "testserver"])
    app = create_app(settings, store, tls=tls)
    with TestClient(app, headers=basic(access, secret)) as client:
        client.admin_auth = basic(access, secret)  # type: ignore[attr-defined]
        yield client
    store.engine.dispose()


def login(api: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = api.post("/v1/login", json={"username": username, "password": password}, headers={"Authorization": ""})
    assert response.status_code == 201, response.text
    body = response.json()
    return basic(body["access_key"], body["secret_key"])


def add_user(api: TestClient, username: str, env: str | None = None, role: str | None = None) -> dict[str, str]:
    """Create a user (optionally a member of `env` with `role`) and return a session's headers."""
    assert api.post("/v1/users", json={"username": username, "password": PASSWORD}).status_code == 201
    if env is not None and role is not None:
        response = api.put(f"/v1/environments/{env}/members", json={"user": username, "role": role})
        assert response.status_code == 200, response.text
    return login(api, username)


@dataclass
class People:
    by_role: dict[str, dict[str, str]]
    stranger: dict[str, str]  # owner of `other`, nothing in `default`


@pytest.fixture
def people(api: TestClient) -> People:
    assert api.post("/v1/environments", json={"name": "other"}).status_code == 201
    by_role = {role: add_user(api, f"u-{role}", "default", role) for role in ROLES}
    return People(by_role=by_role, stranger=add_user(api, "stranger", "other", "owner"))
