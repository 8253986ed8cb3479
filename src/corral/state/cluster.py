"""The one in-memory cluster state of a server: loaded from the database at start, kept equal to it after every
commit, read as immutable snapshots.

Why this way round (the database first, then memory): a write is one transaction of the store; only once it has
committed does the journal (store/journal.py) hand its scopes here, and the rows of those scopes are read again and
applied, under one lock, so memory never holds what the database did not keep (a failed commit changes nothing)
and concurrent commits apply in an order that ends at the database's latest rows. A row a statement wrote whole
(an agent's container report) comes with its commit as it reads back and is not read again, but only from a
transaction that had that kind of entity to itself until now (`journal._Writers`): otherwise it is read too.
Each applied change raises the version and is kept in a bounded history, so a pass can ask what changed since the
version it last planned (an incremental pass); `resync()` reloads everything (start, the periodic safety net,
after a failed refresh).

Why the version starts at the clock (microseconds) and the snapshots of the history are kept: lists carry the
version they were rendered at, and a watch resumes from one (server/routes/watch.py) by comparing the snapshot at that
version with the current one. A version from an earlier run is below this run's first, so it reads as too old
(re-list) rather than as a version this run has not reached; snapshots share all but what changed, so keeping the
last `HISTORY` costs little.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from corral.state.snapshot import ClusterSnapshot, EntityTable
from corral.store.journal import CHILDREN, PK, TABLES, Key, Scope, Written, in_flight, watch
from corral.store.keyed import read_all, read_scope
from corral.store.repository import Store

log = logging.getLogger("corral.state")

HISTORY = 1024  # changes kept for `changes_since`; an older version gets None (plan everything)
RESYNC_COST_FACTOR = 50.0  # a periodic reload waits at least this many times as long as the last one took


@dataclass(frozen=True)
class Change:
    """What one applied commit (or resync) changed: kind -> keys put or removed."""

    version: int
    keys: Mapping[str, frozenset[Key]]


class ClusterState:
    def __init__(self, store: Store, first_version: int | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        start = int(time.time() * 1_000_000) if first_version is None else first_version
        self._current = ClusterSnapshot.empty(start)
        self._history: collections.deque[Change] = collections.deque(maxlen=HISTORY)
        self._snapshots: collections.deque[ClusterSnapshot] = collections.deque(maxlen=HISTORY)
        self._stale = True  # nothing loaded yet, or a refresh failed: the next refresh reloads everything
        self._resynced_at = 0.0  # monotonic time of the last full reload
        self._resync_seconds = 0.0  # how long it took
        self.listeners: list[Callable[[Change], None]] = []  # called after each change, in the writer's thread
        watch(store.session_factory, self._committed)

    @property
    def version(self) -> int:
        return self._current.version

    def snapshot(self) -> ClusterSnapshot:
        return self._current

    @property
    def fresh(self) -> bool:
        """Loaded and not behind the database (False before the first load and after a failed refresh)."""
        return not self._stale

    def snapshot_at(self, version: int) -> ClusterSnapshot | None:
        """The snapshot of exactly `version` while the history holds it (the current one always)."""
        current = self._current
        if version == current.version:
            return current
        for snapshot in list(self._snapshots):
            if snapshot.version == version:
                return snapshot
        return None

    def changes_since(self, version: int) -> dict[str, set[Key]] | None:
        """Kind -> keys changed after `version`, or None when the history no longer reaches back that far."""
        with self._lock:
            history = list(self._history)
            current = self._current.version
        if version >= current:
            return {}
        if not history or history[0].version > version + 1:
            return None
        merged: dict[str, set[Key]] = {}
        for change in history:
            if change.version > version:
                for kind, keys in change.keys.items():
                    merged.setdefault(kind, set()).update(keys)
        return merged

    def resync_if_due(self, max_age_seconds: float) -> bool:
        """The safety net: a full reload when memory may be stale or the last one is older than `max_age_seconds`
        (or, for a large state, than `RESYNC_COST_FACTOR` times the last reload took: the net costs at most a small
        share of the server's time). Returns whether memory differed from the database (a bug somewhere: logged)."""
        due = max(max_age_seconds, RESYNC_COST_FACTOR * self._resync_seconds)
        if not self._stale and time.monotonic() - self._resynced_at < due:
            return False
        stale = self._stale
        change, busy = self._reload()
        if change is not None and not stale:
            # rows of commits on their way here (they wait for the reload's lock) differ from memory for a moment
            faults = {kind: keys for kind, keys in change.keys.items() if kind not in busy}
            counts = ", ".join(f"{len(keys)} {kind}" for kind, keys in sorted((faults or change.keys).items()))
            if faults:
                log.warning("the in-memory state differed from the database (%s); reloaded it", counts)
            else:
                log.info("the reload found rows of commits not yet applied (%s)", counts)
        return change is not None

    def resync(self) -> bool:
        """Reload every table from the database; returns whether memory differed (it should not)."""
        return self._reload()[0] is not None

    def _reload(self) -> tuple[Change | None, set[str]]:
        """The change, and the kinds of which commits were on their way here when the database was read (they
        cannot arrive while this holds the lock, so what is in flight at the end of the read was then too)."""
        started = time.monotonic()
        with self._lock:
            with self._store.session() as session:
                fresh = {kind: read_all(session, kind) for kind in TABLES}
            busy = in_flight(self._store.session_factory)
            changed: dict[str, set[Key]] = {}
            tables = dict(self._current.tables)
            for kind, rows in fresh.items():
                table = tables[kind]
                stale = [key for key in table.rows if key not in rows]
                differ = {key: entity for key, entity in rows.items() if table.rows.get(key) != entity}
                if stale or differ:
                    tables[kind] = table.changed(differ, stale)
                    changed[kind] = {*stale, *differ}
            self._stale = False
            self._resynced_at = time.monotonic()
            self._resync_seconds = self._resynced_at - started
            change = self._publish(tables, changed)
        if change is not None:
            self._notify(change)
        return change, busy

    def _committed(self, scopes: list[Scope], written: Written) -> None:
        """A transaction committed: read its scopes again (but the rows it wrote whole, which it handed over as
        they read back) and apply them. Never raises into the writer, whose transaction is already durable: a
        failed read marks memory stale, and the next refresh reloads it all."""
        try:
            if self._stale:
                self.resync()
            else:
                self._refresh(scopes, written)
        except Exception:
            self._stale = True
            log.warning("the in-memory state could not read a committed change; it reloads at the next one")

    def _refresh(self, scopes: Iterable[Scope], written: Written | None = None) -> None:
        with self._lock:
            tables = dict(self._current.tables)
            changed: dict[str, set[Key]] = {}
            pending = _merged(scopes)
            with self._store.session() as session:
                while pending:
                    scope = pending.pop()
                    table = tables[scope.kind]
                    fresh = _written_of(scope, written) if written else {}
                    unread = scope if not fresh else dataclasses.replace(scope, values=scope.values - fresh.keys())
                    if unread.values:
                        fresh.update(read_scope(session, unread))
                    held = table.in_scope(scope)
                    gone = held - fresh.keys()
                    differ = {key: entity for key, entity in fresh.items() if table.rows.get(key) != entity}
                    if gone or differ:
                        tables[scope.kind] = table.changed(differ, gone)
                        changed.setdefault(scope.kind, set()).update(gone, differ)
                    pending.extend(_cascade(scope.kind, gone))
            change = self._publish(tables, changed)
        if change is not None:
            self._notify(change)

    def _publish(self, tables: dict[str, EntityTable], changed: dict[str, set[Key]]) -> Change | None:
        if not changed:
            return None
        version = self._current.version + 1
        self._snapshots.append(self._current)
        self._current = ClusterSnapshot(version, tables)
        change = Change(version, {kind: frozenset(keys) for kind, keys in changed.items()})
        self._history.append(change)
        return change

    def _notify(self, change: Change) -> None:
        for listener in list(self.listeners):
            try:
                listener(change)
            except Exception:
                log.exception("a state listener failed")


def _written_of(scope: Scope, written: Written) -> dict[Key, Any]:
    """The scope's rows its transaction handed over whole (store/journal.py `wrote`): by primary key only."""
    if scope.column != PK:
        return {}
    return {key: written[(scope.kind, key)] for key in scope.values if (scope.kind, key) in written}


def _merged(scopes: Iterable[Scope]) -> list[Scope]:
    by_column: dict[tuple[str, str], set[Key]] = {}
    for scope in scopes:
        by_column.setdefault((scope.kind, scope.column), set()).update(scope.values)
    return [Scope(kind, column, frozenset(values)) for (kind, column), values in by_column.items() if values]


def _cascade(kind: str, gone: set[Key]) -> list[Scope]:
    """The children of removed parents, re-read: the database may have removed them too (ON DELETE CASCADE)."""
    if not gone:
        return []
    return [Scope(child, column, frozenset(gone)) for child, column in CHILDREN.get(kind, ())]
