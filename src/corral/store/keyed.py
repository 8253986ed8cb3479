"""Reading the cluster's entities by scope, and noticing which scopes a committed transaction touched.

Why here: the in-memory cluster state (`corral.state`) must equal the database after every commit, whichever
repository method wrote. Every write of the store goes through an ORM session, either as flushed objects or as a bulk
`update`/`delete` statement; the journal below records, per session, a *scope* that covers every row the transaction
may have changed (a superset is harmless: rows re-read unchanged stay unchanged), and hands the scopes to a listener
once the transaction has committed (never after a rollback). A scope is a kind of entity and one column with the
values it matched: the primary key, or a column the state indexes (environment, host, stack, service). Rows turn
into entities through the same converters the repositories use, so memory holds exactly what a list call returns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, event, select, tuple_
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ColumnElement

from corral.store.repository import _container, _environment, _host
from corral.store.stacks import LeftoverRecord, _service, _slot, _spec_of, _stack
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
_CHUNK = 500  # values per `IN (...)`: far below every dialect's limit on bound parameters


@dataclass(frozen=True)
class Scope:
    kind: str
    column: str  # PK or one of SCOPE_COLUMNS[kind]
    values: frozenset[Key]


def key_of(kind: str, row: Any) -> Key:
    if kind == "containers":
        return (str(row.host_id), str(row.docker_id))
    return str(row.slot_id if kind == "leftovers" else row.id)


def read_scope(session: Session, scope: Scope) -> dict[Key, Any]:
    """The entities of the scope as stored now, by key."""
    found: dict[Key, Any] = {}
    values = list(scope.values)
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        found.update(_read(session, scope.kind, _where(scope.kind, scope.column, chunk)))
    return found


def read_all(session: Session, kind: str) -> dict[Key, Any]:
    return _read(session, kind, None)


def _where(kind: str, column: str, values: list[Key]) -> ColumnElement[bool]:
    table = TABLES[kind]
    if column != PK:
        return getattr(table, column).in_(values)  # type: ignore[no-any-return]
    if kind == "containers":
        return tuple_(HostContainerRow.host_id, HostContainerRow.docker_id).in_(values)
    pk = table.slot_id if kind == "leftovers" else table.id
    return pk.in_(values)  # type: ignore[no-any-return]


def _read(session: Session, kind: str, where: ColumnElement[bool] | None) -> dict[Key, Any]:
    if kind == "services":
        columns = [c for c in ServiceRow.__table__.c if c.name != "spec"]
        query = select(*columns, cast(ServiceRow.spec, Text).label("spec_text"), StackRow.name.label("stack_name"))
        query = query.join(StackRow, StackRow.id == ServiceRow.stack_id)
        if where is not None:
            query = query.where(where)
        return {
            row["id"]: _service(SimpleNamespace(**row), row["stack_name"], spec=_spec_of(row["spec_text"]))
            for row in session.execute(query).mappings()
        }
    table = TABLES[kind]
    if kind in ("environments", "hosts", "stacks"):
        query = select(table) if where is None else select(table).where(where)
        convert = _CONVERT[kind]
        return {row.id: convert(row) for row in session.scalars(query)}
    plain = select(table.__table__) if where is None else select(table.__table__).where(where)
    convert = _CONVERT[kind]
    result: dict[Key, Any] = {}
    for mapping in session.execute(plain).mappings():
        row = SimpleNamespace(**mapping)
        result[key_of(kind, row)] = convert(row)
    return result


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "environments": _environment,
    "hosts": lambda row: _host(row, 0),  # counts come from the state's index, never from a stored count
    "stacks": _stack,
    "slots": _slot,
    "leftovers": lambda row: LeftoverRecord(**vars(row)),
    "containers": _container,
}


# -- the journal: scopes a transaction touched, handed over after its commit --------------------------------------

_TOUCHED = "corral.touched"
Listener = Callable[[list[Scope]], None]


def watch(factory: sessionmaker[Session], listener: Listener) -> None:
    """Call `listener` with the scopes of every transaction of `factory`'s sessions right after it commits."""
    event.listen(factory, "after_flush", _flushed)
    event.listen(factory, "do_orm_execute", _executed)
    event.listen(factory, "after_commit", lambda session: _committed(session, listener))
    event.listen(factory, "after_rollback", lambda session: session.info.pop(_TOUCHED, None))


def _touch(session: Session, kind: str, column: str, values: Iterable[Key]) -> None:
    touched: dict[tuple[str, str], set[Key]] = session.info.setdefault(_TOUCHED, {})
    touched.setdefault((kind, column), set()).update(values)


def _flushed(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        kind = KIND_OF_TABLE.get(getattr(instance, "__tablename__", ""))
        if kind is not None:
            _touch(session, kind, PK, [key_of(kind, instance)])


def _executed(execution: ORMExecuteState) -> None:
    if not (execution.is_update or execution.is_delete):
        return
    statement: Any = execution.statement
    kind = KIND_OF_TABLE.get(statement.table.name)
    if kind is None:
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


def _committed(session: Session, listener: Listener) -> None:
    touched: dict[tuple[str, str], set[Key]] | None = session.info.pop(_TOUCHED, None)
    if touched:
        listener([Scope(kind, column, frozenset(values)) for (kind, column), values in touched.items()])
