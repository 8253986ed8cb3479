"""The real application on a real database (SQLite file, and PostgreSQL when installed), driven in-process.

Why template databases: every test gets a database of its own, and running the migrations into each one took
about 1.5 s of a loaded machine's disk (a fresh SQLite file: one fsync per revision); the migrations run once per
session (per xdist worker) into a template, and each test starts from a copy (a file copy for SQLite, `CREATE
DATABASE ... TEMPLATE` on PostgreSQL). The server's own start still runs `migrate`, which finds the newest revision.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store
from corral.server.security.tls import ServerTls
from corral.store.database import migrate, open_engine
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


def _migrate(url: str) -> None:
    engine = open_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every migration applied, to copy into a test's data dir."""
    path = tmp_path_factory.mktemp("template") / "corral.db"
    _migrate(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, data_dir: Path) -> str:
    """The URL of a fresh migrated SQLite database in `data_dir` (a copy of the session's template)."""
    target = data_dir / "corral.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def migrated_postgres(postgres: PostgresCluster) -> str:
    """The name of a PostgreSQL database with every migration applied, the template of the tests' databases."""
    name = f"template_{secrets.token_hex(6)}"
    _migrate(postgres.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("migrated_sqlite"), tmp_path)
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t_{secrets.token_hex(6)}", template=request.getfixturevalue("migrated_postgres"))


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
    tls = ServerTls(settings.data_dir)  # as a real server: join tokens carry its CA digest (server/security/tls.py)
    tls.ensure(["localhost", "testserver"])
    app = create_app(settings, store, tls=tls)
    with TestClient(app, headers=basic(access, secret)) as client:
        client.admin_auth = basic(access, secret)  # type: ignore[attr-defined]
        yield client
    store.engine.dispose()
