"""Opening the database: engine options per dialect and migrations to the newest schema.

Why: SQLite needs WAL, a busy timeout and foreign keys switched on for every connection, or concurrent writers
(the API threads and the agent hub) fail with "database is locked"; PostgreSQL needs none of it. The busy timeout
is short: a database locked by another process is an outage answered soon (503), not a request left hanging.
Migrations run at server start under Alembic, so an older data directory is upgraded in place.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from corral.model.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_POOL_SIZE = 40
SQLITE_BUSY_TIMEOUT_MS = 3_000  # a locked database answers 503 within seconds (store/outage.py), never hangs


def open_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # as many kept connections as the server's worker threads (anyio's 40): each connection past the pool is
        # closed when given back, and the next one opens a file and runs the pragmas again (under P3's load, 2.5 %
        # of the server's time went to them)
        pool = (
            {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 20} if parsed.database not in (None, "", ":memory:") else {}
        )
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,  # a database error in a log shows the SQL, never the values (digests, reasons)
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent: a database at it is only asked which it is)."""
    config = _config()
    try:
        with engine.begin() as connection:
            if MigrationContext.configure(connection).get_current_revision() == _head():
                return
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except Exception as exc:  # the database is not there or not ours: say so once, at start
        if type(exc).__module__.startswith(("sqlalchemy", "alembic", "sqlite3", "psycopg")):
            raise Unavailable(f"cannot migrate the database at {engine.url!r}: {exc}") from exc
        raise


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def _head() -> str | None:
    """The newest revision of the migrations shipped (read once per process: alembic loads every script for it)."""
    return ScriptDirectory.from_config(_config()).get_current_head()
