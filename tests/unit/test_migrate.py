"""store/database.py `migrate`: a database at the newest revision is only asked which revision it is at (alembic
loads every script to find it out, once per process); one at an older revision is upgraded to the newest."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from corral.store import database
from corral.store.database import migrate, open_engine


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_an_older_database_is_brought_to_the_newest_revision_and_then_left_alone(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'corral.db'}")
    config = database._config()
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    older = scripts.get_revision(head).down_revision
    assert isinstance(older, str)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, older)
    assert _revision(engine) == older
    migrate(engine)
    assert _revision(engine) == head
    tables = set(inspect(engine).get_table_names())
    migrate(engine)  # at the newest: nothing to do
    assert _revision(engine) == head and set(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_an_empty_database_gets_every_table(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'corral.db'}")
    migrate(engine)
    assert {"hosts", "container_slots", "host_containers"} <= set(inspect(engine).get_table_names())
    engine.dispose()
