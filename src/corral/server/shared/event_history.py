"""Keeps what the event bus publishes: a bounded in-memory buffer written to the database once a second.

Why a buffer and a writer task: events are published from request handlers, the agent hub and the orchestrator,
many per second under load; writing each one on its publisher's path would add a database write to every change.
The writer batches them (store/events.py) and, while the database is unavailable, keeps the newest
`BUFFER_EVENTS` to write once it answers (the oldest are dropped first, and the count of dropped ones is logged).

Why versions jump at a restart (`open`): the bus numbers events as it publishes them, a second before they are kept;
a server that dies loses that second, and a client may have seen those versions live. The next run starts
`RESTART_GAP` above the newest kept one, never giving a number out twice, and a client resuming from inside the gap
is told to re-list (`gone`) instead of silently skipping what it missed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from corral.model.errors import Unavailable
from corral.store.events import EventStore

log = logging.getLogger("corral.server.events")

FLUSH_SECONDS = 1.0
BUFFER_EVENTS = 10_000
RESTART_GAP = 1_000_000  # above what one run can publish and not keep (the buffer, and what it dropped)


class EventHistory:
    def __init__(self, events: EventStore) -> None:
        self.events = events
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=BUFFER_EVENTS)
        self._task: asyncio.Task[None] | None = None
        # one flush at a time: a reader's flush must wait for the writer's batch in flight, or it returns before
        # those events are in the database and the reader misses them
        self._flushing = asyncio.Lock()
        self._oldest_at_start = 0
        self.lost = (0, 0)  # versions (after, through] an earlier run may have given out and not kept

    def open(self) -> int:
        """At start, before the first event: the version the bus goes on from (server/shared/events.py `start_at`)."""
        oldest, newest = self.events.bounds()
        self._oldest_at_start = oldest
        if newest == 0:
            return 0
        self.lost = (newest, newest + RESTART_GAP)
        return newest + RESTART_GAP

    def horizon(self) -> int:
        """Every event after this version that was kept is still kept (older ones were pruned)."""
        floor = self._oldest_at_start - 1 if self._oldest_at_start > 1 else 0
        return max(floor, self.events.pruned_through)

    def gone(self, version: int, current: int) -> str | None:
        """Why the events after `version` cannot all be replayed, or None when they can."""
        if version > current:
            return f"version {version} is newer than this server's {current} (a restart lost it)"
        after, through = self.lost
        if after < version <= through:
            return f"version {version} was given out by a run that stopped before keeping it"
        horizon = self.horizon()
        if version < horizon:
            return f"version {version} is older than the kept history (it starts after {horizon})"
        return None

    def unsaved(self, after: int, through: int, environment_id: str | None) -> list[dict[str, Any]]:
        """Events in (after, through] still waiting in the buffer (the database did not answer the last flush)."""
        return [
            e
            for e in list(self._buffer)
            if after < e["version"] <= through and environment_id in (None, e["environment_id"])
        ]

    def record(self, event: dict[str, Any]) -> None:
        """Called by the bus on the event loop for every published event."""
        if len(self._buffer) == self._buffer.maxlen:
            log.warning("event history buffer full: the oldest unsaved event is dropped")
        self._buffer.append(event)

    async def flush(self) -> None:
        async with self._flushing:
            batch = list(self._buffer)
            if not batch:
                return
            self._buffer.clear()
            try:
                await run_in_threadpool(self.events.append, batch)
            except Unavailable:
                self._buffer.extendleft(reversed(batch[-(BUFFER_EVENTS - len(self._buffer)) :]))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # never let one bad batch stop the history
                log.exception("could not keep events")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
