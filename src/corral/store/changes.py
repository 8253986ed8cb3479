"""A process-wide count of committed database writes, so that readers may cache what they build from the database
and know when it is stale (the API's environment views: server/views/stack_views.py).

Why session events: every write of the store goes through an ORM session (flushes, and `session.execute` of an
insert, update or delete); the count moves only after such a session has committed, so a reader that notes the count
before it reads never keeps data older than the count it stored.
"""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

_WROTE = "corral.wrote"
_lock = threading.Lock()
_counter = itertools.count(1)
_version = 0


def write_version() -> int:
    """Changes whenever a session that wrote has committed."""
    return _version


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(execution: ORMExecuteState) -> None:
    if execution.is_insert or execution.is_update or execution.is_delete:
        execution.session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    global _version
    if session.info.pop(_WROTE, False):
        with _lock:
            _version = next(_counter)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_WROTE, None)
