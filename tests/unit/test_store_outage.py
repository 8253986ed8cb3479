"""The store's one error translator (store/outage.py): database outages become `Unavailable`, bugs stay bugs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy import exc as sa

from corral.model.entities import Orchestration
from corral.model.errors import Unavailable
from corral.store.database import migrate, open_engine
from corral.store.outage import UNAVAILABLE_PREFIX, unavailable_from
from corral.store.repository import Store

STATEMENT = "UPDATE host_containers SET state=? WHERE host_id = ?"
PARAMS = ("running", "h-secret-parameter")
OUTAGES = [sa.OperationalError, sa.InterfaceError, sa.InternalError, sa.DatabaseError]
OURS = [sa.IntegrityError, sa.ProgrammingError, sa.DataError, sa.NotSupportedError]
DRIVER_ERRORS = [sqlite3.OperationalError, sqlite3.DatabaseError, sqlite3.InterfaceError, Exception]


@given(st.sampled_from(OUTAGES), st.sampled_from(DRIVER_ERRORS), st.text(max_size=200))
def test_an_outage_is_unavailable_and_leaks_no_sql(kind, driver_error, said) -> None:
    error = kind(STATEMENT, PARAMS, driver_error(said))
    unavailable = unavailable_from(error)
    assert isinstance(unavailable, Unavailable)
    assert unavailable.status == 503
    assert unavailable.message.startswith(UNAVAILABLE_PREFIX)
    assert unavailable.message.endswith("try again shortly")
    for leak in ("UPDATE", "host_containers", "h-secret-parameter"):
        assert leak not in unavailable.message


@given(st.sampled_from(OURS), st.text(max_size=200))
def test_our_own_errors_pass_through(kind, said) -> None:
    assert unavailable_from(kind(STATEMENT, PARAMS, sqlite3.IntegrityError(said))) is None


@given(st.sampled_from(OURS + OUTAGES), st.text(max_size=50))
def test_a_lost_connection_is_always_an_outage(kind, said) -> None:
    error = kind(STATEMENT, PARAMS, Exception(said), connection_invalidated=True)
    unavailable = unavailable_from(error)
    assert unavailable is not None and "connection to it was lost" in unavailable.message


@given(st.one_of(st.builds(ValueError, st.text()), st.builds(KeyError, st.text()), st.just(sa.NoResultFound())))
def test_other_errors_are_not_translated(error) -> None:
    assert unavailable_from(error) is None


@pytest.mark.parametrize(
    ("said", "cause"),
    [
        ("database is locked", "locked by another process"),
        ("attempt to write a readonly database", "read-only"),
        ("database or disk is full", "its disk is full"),
        ("disk I/O error", "a disk I/O error"),
        ("unable to open database file", "its file cannot be opened"),
        ("server closed the connection unexpectedly", "the connection to it was lost"),
    ],
)
def test_the_cause_is_said_in_plain_words(said: str, cause: str) -> None:
    unavailable = unavailable_from(sa.OperationalError(STATEMENT, PARAMS, sqlite3.OperationalError(said)))
    assert unavailable is not None and f"({cause})" in unavailable.message


def _store(path: Path) -> Store:
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    return Store(engine)


def test_a_database_locked_by_another_process_answers_unavailable_soon_and_reads_go_on(tmp_path: Path) -> None:
    store = _store(tmp_path / "corral.db")
    store.create_environment("before", Orchestration.CATTLE)
    other = sqlite3.connect(tmp_path / "corral.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="locked by another process"):
            store.create_environment("during", Orchestration.CATTLE)
        assert time.monotonic() - started < 8  # the busy timeout, not a hang
        assert [e.name for e in store.list_environments()] == ["before"]  # WAL readers are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.create_environment("after", Orchestration.CATTLE)
    assert {e.name for e in store.list_environments()} == {"before", "after"}
    store.engine.dispose()


def test_a_read_only_database_answers_unavailable_at_once(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    _store(path).create_environment("kept", Orchestration.CATTLE)
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    store = Store(engine)
    with pytest.raises(Unavailable, match="read-only"):
        store.create_environment("refused", Orchestration.CATTLE)
    assert [e.name for e in store.list_environments()] == ["kept"]
    engine.dispose()
