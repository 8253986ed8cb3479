"""Keeps what the event bus publishes: a bounded in-memory buffer written to the database once a second.

Why a buffer and a writer task: events are published from request handlers, the agent hub and the orchestrator,
many per second under load; writing each one on its publisher's path would add a database write to every change.
The writer batches them (store/events.py) and, while the database is unavailable, keeps the newest
`BUFFER_EVENTS` to write once it answers (the oldest are dropped first, and the count of dropped ones is logged).
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


class EventHistory:
    def __init__(self, events: EventStore) -> None:
        self.events = events
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=BUFFER_EVENTS)
        self._task: asyncio.Task[None] | None = None
        # one flush at a time: a reader's flush must wait for the writer's batch in flight, or it returns before
        # those events are in the database and the reader misses them
        self._flushing = asyncio.Lock()

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
