"""The real application on a real database (SQLite file, and PostgreSQL when installed), driven in-process."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store
from corral.server.tls import ServerTls
from tests.postgres import PostgresCluster, postgres_bin


def basic(access: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{access}:{secret}".encode()).decode()}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL variant: PostgreSQL is not installed")
        pytest.skip("PostgreSQL is not installed (run `make setup`)")
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corral.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t_{secrets.token_hex(6)}")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        heartbeat_seconds=0.5,  # silent 3 s -> reconnecting, 3 s more -> disconnected: quick, yet a test that
        missed_heartbeats=6,  # sends no heartbeat keeps its host active on a loaded machine
        host_grace_seconds=3.0,
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    store = open_store(settings)
    access, secret = ensure_admin_key(store, settings.data_dir) or ("", "")
    ensure_default_environment(store)
    tls = ServerTls(settings.data_dir)  # as a real server: join tokens carry its CA digest (server/tls.py)
    tls.ensure(["localhost", "testserver"])
    app = create_app(settings, store, tls=tls)
    with TestClient(app, headers=basic(access, secret)) as client:
        client.admin_auth = basic(access, secret)  # type: ignore[attr-defined]
        yield client
    store.engine.dispose()
