"""Which rows a transaction may have changed, handed to a listener once it has committed.

Why session events: every write of the store goes through an ORM session, as flushed objects or as bulk
`update`/`delete` statements. The journal records per session a *scope* covering every row the transaction may have
changed (a superset is harmless: rows re-read unchanged stay unchanged): a kind of entity and one column with the
values it matched, the primary key or a column the in-memory state indexes (environment, host, stack, service). After
the commit, once the session has given its connection back (`Store.session` calls `deliver`), the listener gets the
scopes; a rolled back transaction hands over nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from corral.store.tables import (
    EnvironmentRow,
    HostContainerRow,
    HostRow,
    LeftoverRow,
    ServiceRow,
    SlotRow,
    StackRow,
)

Key = str | tuple[str, str]  # an id, or (host id, docker id) for a reported container
PK = "pk"  # the scope column naming the primary key

TABLES: dict[str, Any] = {
    "environments": EnvironmentRow,
    "hosts": HostRow,
    "stacks": StackRow,
    "services": ServiceRow,
    "slots": SlotRow,
    "leftovers": LeftoverRow,
    "containers": HostContainerRow,
}
KIND_OF_TABLE = {table.__tablename__: kind for kind, table in TABLES.items()}
# the columns a scope may name besides the primary key (the state keeps an index of each)
SCOPE_COLUMNS: dict[str, tuple[str, ...]] = {
    "environments": (),
    "hosts": ("environment_id",),
    "stacks": ("environment_id",),
    "services": ("environment_id", "stack_id"),
    "slots": ("environment_id", "stack_id", "service_id", "host_id"),
    "leftovers": ("environment_id", "host_id"),
    "containers": ("host_id",),
}
# rows the database removes with their parent (ON DELETE CASCADE): re-read when a parent goes
CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    "environments": (("hosts", "environment_id"), ("stacks", "environment_id")),
    "hosts": (("containers", "host_id"),),
    "stacks": (("services", "stack_id"), ("slots", "stack_id")),
    "services": (("slots", "service_id"),),
}


@dataclass(frozen=True)
class Scope:
    kind: str
    column: str  # PK or one of SCOPE_COLUMNS[kind]
    values: frozenset[Key]


def key_of(kind: str, row: Any) -> Key:
    if kind == "containers":
        return (str(row.host_id), str(row.docker_id))
    return str(row.slot_id if kind == "leftovers" else row.id)


_TOUCHED = "corral.touched"  # session.info: scopes of the open transaction
_COMMITTED = "corral.committed"  # session.info: scopes of committed transactions, not yet delivered
_WRITTEN = "corral.written"  # session.info: (kind, key) -> the entity a statement of the open transaction stored
_WRITTEN_COMMITTED = "corral.written.committed"  # session.info: the same, of committed transactions
_LISTENER = "corral.journal"  # factory.kw["info"]: the listener of the factory's sessions
_WRITERS = "corral.writers"  # factory.kw["info"]: which sessions write which kinds (`_Writers`)
_IN_FLIGHT = "corral.in_flight"  # factory.kw["info"]: kinds committed but not yet handed to the listener (`_InFlight`)
_COUNTED = "corral.counted"  # session.info: the kinds its commits added to `_InFlight`
Written = dict[tuple[str, Key], Any]
Listener = Callable[[list[Scope], Written], None]


WHOLE = "*"  # a writer's part when it may have written any row of its kind


def part_of(kind: str, column: str, value: Key) -> str:
    """The part of its kind a written row belongs to, for `_Writers`: a reported container's host (one host's reports
    are applied in order by one task, so hosts' writers do not overlap one another), the whole kind otherwise."""
    if kind != "containers":
        return WHOLE
    if column == PK and isinstance(value, tuple):
        return value[0]
    if column == "host_id":
        return str(value)
    return WHOLE


class _Writers:
    """Which sessions are writing each part of each kind of entity (`part_of`), from their first write until their
    change is applied (or rolled back). Why: an entity handed over as written is only the truth if no other
    transaction wrote its rows meanwhile: commits of two threads may reach the listener in another order than the
    database committed them (a re-read is right in any order; a written entity is not). So it is taken only from a
    session that had its part to itself (no other writer of that part, nor of the whole kind) from its first write
    to its delivery; any overlap marks both writers `disturbed`, and their rows are read again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[tuple[str, str], set[int]] = {}  # (kind, part) -> the sessions writing it
        self.parts: dict[int, set[tuple[str, str]]] = {}  # session -> the (kind, part)s it writes
        self.disturbed: set[tuple[int, str, str]] = set()

    def register(self, session: Session, kind: str, part: str = WHOLE) -> None:
        me = id(session)
        with self.lock:
            mine = self.parts.setdefault(me, set())
            if (kind, part) in mine:
                return
            if part == WHOLE:
                others = {(other, kind, p) for (k, p), ids in self.active.items() if k == kind for other in ids}
            else:
                others = {(other, kind, part) for other in self.active.get((kind, part), ())}
                others |= {(other, kind, WHOLE) for other in self.active.get((kind, WHOLE), ())}
            others = {entry for entry in others if entry[0] != me}
            if others:
                self.disturbed |= others
                self.disturbed.add((me, kind, part))
                if part == WHOLE:  # this session's own parts of the kind overlap the others too
                    self.disturbed |= {(me, kind, p) for k, p in mine if k == kind}
            mine.add((kind, part))
            self.active.setdefault((kind, part), set()).add(me)

    def alone(self, session: Session, kind: str, part: str = WHOLE) -> bool:
        """Whether the session wrote that part of `kind` with no other session writing it (or the whole kind) from
        its first write until now."""
        me = id(session)
        with self.lock:
            return (kind, part) in self.parts.get(me, ()) and (me, kind, part) not in self.disturbed

    def done(self, session: Session) -> None:
        me = id(session)
        with self.lock:
            for kind, part in self.parts.pop(me, ()):
                ids = self.active.get((kind, part))
                if ids is not None:
                    ids.discard(me)
                    if not ids:
                        del self.active[(kind, part)]
                self.disturbed.discard((me, kind, part))


class _InFlight:
    """How many committed transactions of each kind have not reached the listener yet. Why: a full reload that
    reads the database while they are on their way finds their rows differing from memory, which is no fault."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kinds: Iterable[str], step: int) -> None:
        with self.lock:
            for kind in kinds:
                count = self.counts.get(kind, 0) + step
                if count > 0:
                    self.counts[kind] = count
                else:
                    self.counts.pop(kind, None)


def watch(factory: sessionmaker[Session], listener: Listener) -> None:
    """Call `listener` with the scopes of every committed transaction of `factory`'s sessions (see `deliver`)."""
    info = factory.kw.setdefault("info", {})
    info[_LISTENER] = listener
    info[_WRITERS] = _Writers()
    info[_IN_FLIGHT] = _InFlight()
    event.listen(factory, "after_flush", _flushed)
    event.listen(factory, "do_orm_execute", _executed)
    event.listen(factory, "after_commit", _committed)
    event.listen(factory, "after_rollback", _rolled_back)


def in_flight(factory: sessionmaker[Session]) -> set[str]:
    """The kinds of entity that transactions of `factory` committed and that have not reached its listener yet."""
    flights: _InFlight | None = factory.kw.get("info", {}).get(_IN_FLIGHT)
    if flights is None:
        return set()
    with flights.lock:
        return set(flights.counts)


def deliver(session: Session) -> None:
    """Hand the session's committed scopes (and the entities written whole) to its factory's listener; called once
    the session is closed."""
    committed: list[Scope] | None = session.info.pop(_COMMITTED, None)
    written: Written = session.info.pop(_WRITTEN_COMMITTED, None) or {}
    listener: Listener | None = session.info.get(_LISTENER)
    writers: _Writers | None = session.info.get(_WRITERS)
    flights: _InFlight | None = session.info.get(_IN_FLIGHT)
    counted: set[str] = session.info.pop(_COUNTED, None) or set()
    try:
        if committed and listener is not None:
            if writers is not None:
                written = {
                    (kind, key): entity
                    for (kind, key), entity in written.items()
                    if writers.alone(session, kind, part_of(kind, PK, key))
                }
            listener(committed, written)
    finally:
        if writers is not None:
            writers.done(session)
        if flights is not None and counted:
            flights.add(counted, -1)


def wrote(session: Session, kind: str, key: Key, entity: Any) -> None:
    """A statement of the session's transaction stored this whole row, which reads back as `entity`: once committed,
    the listener takes it as it is instead of reading the row again (an agent's container report costs its one
    upsert, not a read after it). Any other write of the same kind in the transaction drops it (read instead)."""
    _touch(session, kind, PK, [key])
    session.info.setdefault(_WRITTEN, {})[(kind, key)] = entity


def _forget_written(session: Session, kind: str) -> None:
    written: Written | None = session.info.get(_WRITTEN)
    if written:
        _forget_written_in(written, kind)


def _forget_written_in(written: Written, kind: str) -> None:
    for entry in [entry for entry in written if entry[0] == kind]:
        del written[entry]


def _rolled_back(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
    session.info.pop(_WRITTEN, None)
    writers: _Writers | None = session.info.get(_WRITERS)
    if writers is not None and not session.info.get(_COMMITTED):  # nothing of it left to apply
        writers.done(session)


def _touch(session: Session, kind: str, column: str, values: Iterable[Key]) -> None:
    writers: _Writers | None = session.info.get(_WRITERS)
    values = list(values)
    if writers is not None:
        for part in {part_of(kind, column, value) for value in values} or {WHOLE}:
            writers.register(session, kind, part)
    touched: dict[tuple[str, str], set[Key]] = session.info.setdefault(_TOUCHED, {})
    touched.setdefault((kind, column), set()).update(values)


def _flushed(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        kind = KIND_OF_TABLE.get(getattr(instance, "__tablename__", ""))
        if kind is not None:
            _touch(session, kind, PK, [key_of(kind, instance)])
            _forget_written(session, kind)


def _executed(execution: ORMExecuteState) -> None:
    if not (execution.is_update or execution.is_delete):
        return
    statement: Any = execution.statement
    kind = KIND_OF_TABLE.get(statement.table.name)
    if kind is None:
        return
    _forget_written(execution.session, kind)
    by_key = _bulk_keys(kind, statement, execution.parameters)
    if by_key is not None:
        _touch(execution.session, kind, PK, by_key)
        return
    bound = _bound_column(kind, statement.whereclause)
    if bound is not None:
        _touch(execution.session, kind, *bound)
        return
    # no column we can scope by: note the keys the statement is about to touch (one more read, rare)
    table = TABLES[kind]
    pk_columns = list(table.__table__.primary_key.columns)
    query = select(*pk_columns)
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    keys = [tuple(row) if kind == "containers" else row[0] for row in execution.session.execute(query)]
    _touch(execution.session, kind, PK, keys)


def _bulk_keys(kind: str, statement: Any, parameters: Any) -> list[Key] | None:
    """The keys of an ORM bulk UPDATE by primary key (`session.execute(update(Row), [{"id": ..., ...}, ...])`: no
    WHERE clause, one parameter set per row), None for any other statement."""
    if statement.whereclause is not None or not isinstance(parameters, list) or not parameters:
        return None
    pk_name = "slot_id" if kind == "leftovers" else "id"
    if kind == "containers" or not all(isinstance(p, dict) and pk_name in p for p in parameters):
        return None
    return [str(p[pk_name]) for p in parameters]


def _bound_column(kind: str, clause: Any) -> tuple[str, Collection[Key]] | None:
    """A (column, values) every row the clause matches has: from `col == value` or `col IN (...)`, alone or as
    one term of an AND."""
    terms = clause.clauses if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_ else [clause]
    pk_name = "slot_id" if kind == "leftovers" else "id"
    for term in terms:
        if not isinstance(term, BinaryExpression) or not isinstance(term.right, BindParameter):
            continue
        name = getattr(term.left, "name", None)
        if kind == "containers" and name == "docker_id":
            continue  # half a composite key: host_id, when the clause has it, scopes the row
        column = PK if name == pk_name else name
        if column != PK and column not in SCOPE_COLUMNS[kind]:
            continue
        value = term.right.effective_value
        if term.operator is operators.eq and value is not None:
            return column, [value]
        if term.operator is operators.in_op and isinstance(value, list | tuple):
            return column, list(value)
    return None


def _committed(session: Session) -> None:
    touched: dict[tuple[str, str], set[Key]] | None = session.info.pop(_TOUCHED, None)
    written: Written | None = session.info.pop(_WRITTEN, None)
    if touched:
        scopes = [Scope(kind, column, frozenset(values)) for (kind, column), values in touched.items()]
        session.info.setdefault(_COMMITTED, []).extend(scopes)
        flights: _InFlight | None = session.info.get(_IN_FLIGHT)
        counted: set[str] = session.info.setdefault(_COUNTED, set())
        if flights is not None:
            kinds = {kind for kind, _ in touched} - counted
            flights.add(kinds, 1)
            counted.update(kinds)
        earlier: Written = session.info.get(_WRITTEN_COMMITTED) or {}
        for kind in {kind for kind, _ in touched}:  # an earlier transaction's entities of these kinds may be stale
            _forget_written_in(earlier, kind)
    if written:
        session.info.setdefault(_WRITTEN_COMMITTED, {}).update(written)
