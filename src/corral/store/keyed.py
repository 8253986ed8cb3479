"""Reading the cluster's entities by scope (store/journal.py says which scopes a transaction touched).

Why here: the in-memory cluster state (`corral.state`) re-reads exactly the rows a commit may have changed, and must
hold what a list call of the repositories returns: rows turn into entities through the repositories' converters.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from corral.model.stack import LeftoverRecord
from corral.store.journal import PK, TABLES, Key, Scope, key_of
from corral.store.repository import _container, _environment, _host
from corral.store.stacks import _service, _slot, _spec_of, _stack
from corral.store.tables import HostContainerRow, ServiceRow, StackRow

_CHUNK = 500  # values per `IN (...)`: far below every dialect's limit on bound parameters


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
