"""Agent reports waiting for the store, kept per host in arrival order, and applied off the connection that
brought them.

Why: an agent reports each change once (a container delta, a slot's reason, its facts); a report lost to a locked
or read-only database would leave the server's view wrong until the agent's next full snapshot (up to a minute).
Every report joins its host's queue and a task of that host (`ReportDrain`) applies the queue in order, so the
agent's connection keeps being read while its reports wait for the database: uvicorn reads a websocket only between
two `receive` calls, and an agent whose reports were applied inline missed its keepalive pong whenever the database
was slow (at 1,000 agents: thousands of `1011 keepalive ping timeout` closes per minute, each costing a reconnect and
full states). While the database is unavailable the queues wait and are retried. A snapshot replaces the container
reports before it (it is the whole truth); past `limit` the oldest deltas go (the agent's periodic snapshot covers
them), so memory stays bounded however long the database takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.model import protocol
from corral.model.errors import Unavailable

log = logging.getLogger("corral.hub")

DEFAULT_LIMIT = 1000
_SUPERSEDED_BY_SNAPSHOT = frozenset({protocol.SNAPSHOT, protocol.CONTAINER})


@dataclass(frozen=True)
class Report:
    message: protocol.Message
    address: str = ""  # where the agent connected from (a `hello`'s facts are stored with it)


class ReportBacklog:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._queues: dict[str, deque[Report]] = {}
        self.dropped = 0  # container deltas dropped over the limit (covered by the agent's next snapshot)

    def pending(self, host_id: str) -> bool:
        return bool(self._queues.get(host_id))

    def hosts(self) -> list[str]:
        return [host_id for host_id, queue in self._queues.items() if queue]

    def size(self, host_id: str) -> int:
        return len(self._queues.get(host_id, ()))

    def add(self, host_id: str, report: Report) -> None:
        queue = self._queues.setdefault(host_id, deque())
        if report.message.type == protocol.SNAPSHOT:
            kept = [r for r in queue if r.message.type not in _SUPERSEDED_BY_SNAPSHOT]
            queue.clear()
            queue.extend(kept)
        queue.append(report)
        while len(queue) > self.limit:
            oldest_delta = next((r for r in queue if r.message.type == protocol.CONTAINER), None)
            queue.remove(oldest_delta if oldest_delta is not None else queue[0])
            self.dropped += 1

    def first(self, host_id: str) -> Report | None:
        queue = self._queues.get(host_id)
        return queue[0] if queue else None

    def done(self, host_id: str, report: Report) -> None:
        """The report was applied (or can never be): drop it, if it is still first in line."""
        queue = self._queues.get(host_id)
        if queue and queue[0] is report:
            queue.popleft()
        if not queue:
            self._queues.pop(host_id, None)

    def forget(self, host_id: str) -> None:
        self._queues.pop(host_id, None)


class ReportDrain:
    """Applies each host's queued reports in order on one task per host. `apply` stores one report (raising
    Unavailable when the database refuses: the queue waits for the next `run`); `unavailable` hears of it."""

    def __init__(
        self,
        backlog: ReportBacklog,
        apply: Callable[[str, Report], Awaitable[None]],
        unavailable: Callable[[Unavailable], None],
    ) -> None:
        self.backlog = backlog
        self._apply = apply
        self._unavailable = unavailable
        self._tasks: dict[str, asyncio.Task[bool]] = {}

    def kick(self, host_id: str) -> None:
        """Make sure the host's queue is being applied (a task of its own, unless one runs)."""
        if host_id not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._drain(host_id), name=f"reports-{host_id}")
            self._tasks[host_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(host_id, None))

    def busy(self, host_id: str) -> bool:
        """Whether a task is applying the host's queue now."""
        return host_id in self._tasks

    async def run(self, host_id: str) -> bool:
        """Apply the host's queue now (or wait for the task applying it); False when the database refused."""
        self.kick(host_id)
        task = self._tasks.get(host_id)
        return await asyncio.shield(task) if task is not None else True

    async def _drain(self, host_id: str) -> bool:
        while (report := self.backlog.first(host_id)) is not None:
            try:
                await self._apply(host_id, report)
            except Unavailable as exc:
                self._unavailable(exc)
                return False
            except Exception:  # a bug must cost one report, not the host's every later report
                log.exception("applying a %s report of host %s failed; dropped", report.message.type, host_id)
            self.backlog.done(host_id, report)
        return True

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
