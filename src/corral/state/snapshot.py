"""Immutable, indexed tables of entities and the snapshot that groups them at one version.

Why persistent maps (`immutables.Map`, a hash array mapped trie): a change copies O(log n) nodes, not the table, so
every version can be handed to readers as is, and a reader keeps a consistent view for as long as it holds it while
writers go on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from immutables import Map

from corral.model.entities import Environment, Host, ObservedContainer
from corral.model.stack import LeftoverRecord, Service, SlotRecord, Stack
from corral.runtime.labels import CONTAINER as CONTAINER_LABEL
from corral.store.journal import PK, TABLES, Key, Scope

Extractor = Callable[[Key, Any], Hashable]

# per kind: index name -> the value an entity is filed under (the store's scope columns are among them)
INDEXES: dict[str, dict[str, Extractor]] = {
    "environments": {},
    "hosts": {"environment_id": lambda _k, h: h.environment_id, "state": lambda _k, h: h.state.value},
    "stacks": {"environment_id": lambda _k, s: s.environment_id},
    "services": {
        "environment_id": lambda _k, s: s.environment_id,
        "stack_id": lambda _k, s: s.stack_id,
        "state": lambda _k, s: s.state,
    },
    "slots": {
        "environment_id": lambda _k, r: r.slot.environment_id,
        "stack_id": lambda _k, r: r.stack_id,
        "service_id": lambda _k, r: r.service_id,
        "host_id": lambda _k, r: r.slot.host_id,
    },
    "leftovers": {"environment_id": lambda _k, item: item.environment_id, "host_id": lambda _k, item: item.host_id},
    "containers": {
        "host_id": lambda k, _c: k[0],
        "slot": lambda _k, c: c.labels.get(CONTAINER_LABEL, ""),
        "state": lambda _k, c: c.state,
    },
}
_EMPTY: Map[Any, Any] = Map()


@dataclass(frozen=True)
class EntityTable:
    """One kind of entity by key, with an index per `INDEXES[kind]` (value -> keys filed under it)."""

    kind: str
    rows: Map[Key, Any]
    indexes: Mapping[str, Map[Hashable, Map[Key, None]]]

    @classmethod
    def empty(cls, kind: str) -> EntityTable:
        return cls(kind, _EMPTY, {name: _EMPTY for name in INDEXES[kind]})

    def keys(self, index: str, value: Hashable) -> Iterable[Key]:
        return self.indexes[index].get(value, _EMPTY).keys()

    def where(self, index: str, value: Hashable) -> list[Any]:
        rows = self.rows
        return [rows[key] for key in self.keys(index, value)]

    def in_scope(self, scope: Scope) -> set[Key]:
        """The keys held now that the scope covers."""
        if scope.column == PK:
            return {key for key in scope.values if key in self.rows}
        return {key for value in scope.values for key in self.keys(scope.column, value)}

    def changed(self, put: Mapping[Key, Any], remove: Iterable[Key]) -> EntityTable:
        """This table with `put` stored (replacing) and `remove` gone; only entries that differ are touched."""
        extractors = INDEXES[self.kind]
        rows = self.rows.mutate()
        indexes = {name: index.mutate() for name, index in self.indexes.items()}

        def unfile(key: Key, entity: Any) -> None:
            for name, extract in extractors.items():
                value = extract(key, entity)
                members = indexes[name].get(value, _EMPTY).delete(key)
                if members:
                    indexes[name][value] = members
                else:
                    del indexes[name][value]

        def file(key: Key, entity: Any) -> None:
            for name, extract in extractors.items():
                value = extract(key, entity)
                indexes[name][value] = indexes[name].get(value, _EMPTY).set(key, None)

        for key in remove:
            old = rows.get(key)
            if old is not None:
                unfile(key, old)
                del rows[key]
        for key, entity in put.items():
            old = rows.get(key)
            if old is not None:
                if old == entity:
                    continue
                unfile(key, old)
            file(key, entity)
            rows[key] = entity
        return EntityTable(self.kind, rows.finish(), {name: index.finish() for name, index in indexes.items()})


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything at one `version`; lists come in the order the store lists them (callers rely on it)."""

    version: int
    tables: Mapping[str, EntityTable]

    @classmethod
    def empty(cls, version: int = 0) -> ClusterSnapshot:
        return cls(version, {kind: EntityTable.empty(kind) for kind in TABLES})

    def get(self, kind: str, key: Key) -> Any | None:
        return self.tables[kind].rows.get(key)

    def _select(self, kind: str, **filters: Hashable | None) -> list[Any]:
        table = self.tables[kind]
        wanted = [(name, value) for name, value in filters.items() if value is not None]
        if not wanted:
            return list(table.rows.values())
        (name, value), rest = wanted[0], wanted[1:]
        keys: Iterable[Key] = table.keys(name, value)
        for other, other_value in rest:
            keys = set(keys) & set(table.keys(other, other_value))
        return [table.rows[key] for key in keys]

    def environments(self) -> list[Environment]:
        return sorted(self._select("environments"), key=lambda e: e.name)

    def hosts(self, environment_id: str | None = None) -> list[Host]:
        """With `container_count` 0, as `Store.list_hosts(container_counts=False)`; see `container_count`."""
        return sorted(self._select("hosts", environment_id=environment_id), key=lambda h: h.name)

    def container_count(self, host_id: str) -> int:
        return len(self.tables["containers"].indexes["host_id"].get(host_id, _EMPTY))

    def stacks(self, environment_id: str | None = None) -> list[Stack]:
        return sorted(self._select("stacks", environment_id=environment_id), key=lambda s: s.name)

    def services(self, *, environment_id: str | None = None, stack_id: str | None = None) -> list[Service]:
        found = self._select("services", environment_id=environment_id, stack_id=stack_id)
        return sorted(found, key=lambda s: (s.stack, s.position))

    def slots(
        self, *, environment_id: str | None = None, host_id: str | None = None, service_id: str | None = None
    ) -> list[SlotRecord]:
        found = self._select("slots", environment_id=environment_id, host_id=host_id, service_id=service_id)
        return sorted(found, key=slot_order)

    def leftovers(self, environment_id: str | None = None) -> list[LeftoverRecord]:
        return self._select("leftovers", environment_id=environment_id)

    def containers_of_slots(self, slot_ids: Iterable[str]) -> list[tuple[str, ObservedContainer]]:
        """(host id, container) of every reported container labelled with one of the slots."""
        table = self.tables["containers"]
        return [(key[0], table.rows[key]) for slot_id in slot_ids for key in table.keys("slot", slot_id)]

    def containers(
        self, host_id: str | None = None, *, hosts: Iterable[str] | None = None
    ) -> list[tuple[str, ObservedContainer]]:
        """(host id, container) of every reported container, of one host's, or of these hosts'."""
        table = self.tables["containers"]
        if hosts is not None:
            rows = table.rows
            return [(key[0], rows[key]) for host in hosts for key in table.keys("host_id", host)]
        keys = table.rows.keys() if host_id is None else table.keys("host_id", host_id)
        return [(key[0], table.rows[key]) for key in keys]


def slot_order(record: SlotRecord) -> tuple[str, str, int, str]:
    """The order slots are listed in (the store's, with the id deciding between an index's old and new slot)."""
    return (record.slot.stack, record.slot.service, record.slot.index, record.slot.id)
