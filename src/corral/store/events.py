"""Event history: the events the bus publishes (server/shared/events.py), kept in the database with bounded retention
and read back in pages, newest first, so that the UI's events page and `corral events --since` start with history.

Why Core statements on the engine instead of an ORM session: an event is a record of a change, not a change; writing
it through a session would move the store's write version (store/changes.py) and make every cached view and skipped
orchestrator pass stale after each event. Why batches: the bus hands over what it published in the last second in one
transaction (server/shared/event_history.py), never one write per event on the request path.

Why the bus's version is the row's id: a client that saw event N on the websocket resumes with `since_version=N` and
is replayed exactly the kept rows after N, the same numbers it saw live, across a server restart too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from corral.store.outage import outage_as_unavailable
from corral.store.repository import Store
from corral.store.tables import EventRow

KEEP_EVENTS = 10_000  # the newest this many stay; older ones are pruned with each batch
MAX_DATA_BYTES = 8_192  # larger event bodies are kept as a summary (id and name)
PAGE_LIMIT = 500
HIDDEN_KEYS = frozenset({"password", "secret", "secret_key", "private_key", "token", "key"})


def _kept_data(data: dict[str, Any]) -> dict[str, Any]:
    """The event's resource as stored: no key that may hold a secret, and bounded in size."""
    clean = {k: v for k, v in data.items() if k not in HIDDEN_KEYS}
    if len(json.dumps(clean, default=str)) <= MAX_DATA_BYTES:
        return clean
    return {k: clean[k] for k in ("id", "name", "state") if k in clean} | {"truncated": True}


class EventStore:
    def __init__(self, store: Store, keep: int = KEEP_EVENTS) -> None:
        self.engine = store.engine
        self.keep = keep
        self.pruned_through = 0  # the newest id pruned while this server runs (0: none yet)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with outage_as_unavailable(), self.engine.begin() as connection:
            yield connection

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Keep the events (as the bus published them), then prune all but the newest `keep`."""
        if not events:
            return
        rows = [
            {
                **({"id": int(e["version"])} if e.get("version") else {}),
                "time": float(e["time"]),
                "environment_id": e.get("environment_id") or "",
                "resource_type": str(e["resource_type"])[:32],
                "action": str(e["action"])[:32],
                "resource_id": str(e.get("id") or "")[:64],
                "data": _kept_data(dict(e.get("data") or {})),
            }
            for e in events
        ]
        with self._connection() as connection:
            connection.execute(insert(EventRow), rows)
            # by count, not by id arithmetic: ids jump at a restart (server/shared/event_history.py)
            boundary = connection.execute(
                select(EventRow.id).order_by(EventRow.id.desc()).offset(self.keep).limit(1)
            ).scalar_one_or_none()
            if boundary is not None:
                connection.execute(delete(EventRow).where(EventRow.id <= boundary))
                self.pruned_through = max(self.pruned_through, boundary)

    def bounds(self) -> tuple[int, int]:
        """(oldest, newest) kept id, (0, 0) when none is kept."""
        with self._connection() as connection:
            oldest, newest = connection.execute(select(func.min(EventRow.id), func.max(EventRow.id))).one()
        return int(oldest or 0), int(newest or 0)

    def after(
        self, version: int, through: int, environment_id: str | None = None, limit: int = PAGE_LIMIT
    ) -> list[dict[str, Any]]:
        """Kept events with `version` < id <= `through`, oldest first, at most `limit`: of one environment only
        (as its live subscribers get them) or, for None, of all."""
        query = (
            select(EventRow)
            .where(EventRow.id > version, EventRow.id <= through)
            .order_by(EventRow.id)
            .limit(max(1, min(limit, PAGE_LIMIT)))
        )
        if environment_id is not None:
            query = query.where(EventRow.environment_id == environment_id)
        with self._connection() as connection:
            rows = connection.execute(query).mappings().all()
        return [_event(row) for row in rows]

    def page(
        self,
        environment_id: str | None = None,
        *,
        since: float | None = None,
        before: int | None = None,
        resource_type: str | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict[str, Any]]:
        """Events newest first: of one environment (and those of none) or all, after `since` (UNIX time), older than
        the event id `before` (the cursor of the next page), at most `limit`."""
        query = select(EventRow).order_by(EventRow.id.desc()).limit(max(1, min(limit, PAGE_LIMIT)))
        if environment_id is not None:
            query = query.where(EventRow.environment_id.in_((environment_id, "")))
        if since is not None:
            query = query.where(EventRow.time >= since)
        if before is not None:
            query = query.where(EventRow.id < before)
        if resource_type:
            query = query.where(EventRow.resource_type == resource_type)
        with self._connection() as connection:
            rows = connection.execute(query).mappings().all()
        return [_event(row) for row in rows]


def _event(row: Any) -> dict[str, Any]:
    return {
        "type": "resource.change",
        "event_id": row["id"],
        "version": row["id"],
        "time": row["time"],
        "environment_id": row["environment_id"] or None,
        "resource_type": row["resource_type"],
        "action": row["action"],
        "id": row["resource_id"] or None,
        "data": row["data"],
    }
