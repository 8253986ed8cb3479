"""Process-wide counts of committed database writes, so that readers may cache what they build from the database
and know when it is stale (the API's environment views: server/views/stack_views.py; principals read for API keys:
store/repository.py `authenticate`).

Why session events: every write of the store goes through an ORM session (flushes, and `session.execute` of an
insert, update or delete); the count moves only after such a session has committed, so a reader that notes the count
before it reads never keeps data older than the count it stored.
"""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

_WROTE = "corral.wrote"  # session.info: the tables the open transaction wrote ("" when unknown)
_lock = threading.Lock()
_counter = itertools.count(1)
_version = 0
_identity_version = 0
_service_identity_version = 0
# tables no principal is read from, written all the time: agents' container reports, events, the audit trail,
# idempotency records
_NOT_IDENTITY = frozenset({"host_containers", "events", "audit_log", "idempotency_keys"})
# ... and the workloads: only a container's own key (a service account) is read with its slot; no key is removed
# with a host but by a statement on `api_keys` itself
_NOT_IDENTITY_BUT_OF_CONTAINERS = _NOT_IDENTITY | {"hosts", "stacks", "services", "container_slots", "slot_leftovers"}


def write_version() -> int:
    """Changes whenever a session that wrote has committed."""
    return _version


def identity_version(*, of_container: bool = False) -> int:
    """Changes whenever a session that wrote anything a principal may be read from (keys, users, environments ...:
    every table but `_NOT_IDENTITY_BUT_OF_CONTAINERS`; with `of_container`, for a container's own key, the
    workloads too: every table but `_NOT_IDENTITY`) has committed."""
    return _service_identity_version if of_container else _identity_version


def _wrote(session: Session, table: str) -> None:
    session.info.setdefault(_WROTE, set()).add(table)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        _wrote(session, str(getattr(instance, "__tablename__", "")))


@event.listens_for(Session, "do_orm_execute")
def _executed(execution: ORMExecuteState) -> None:
    if execution.is_insert or execution.is_update or execution.is_delete:
        table = getattr(execution.statement, "table", None)
        _wrote(execution.session, str(getattr(table, "name", "")))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    global _version, _identity_version, _service_identity_version
    tables: set[str] | None = session.info.pop(_WROTE, None)
    if tables:
        with _lock:
            _version = next(_counter)
            if tables - _NOT_IDENTITY:
                _service_identity_version = _version
            if tables - _NOT_IDENTITY_BUT_OF_CONTAINERS:
                _identity_version = _version


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_WROTE, None)
