"""Agent reports the store could not take while its database was unavailable, kept per host to be applied later.

Why: an agent reports each change once (a container delta, a slot's reason, its facts); a report lost to a locked
or read-only database would leave the server's view wrong until the agent's next full snapshot (up to a minute).
The hub keeps such reports in arrival order and applies them once the database answers again; while a host has a
backlog, its new reports queue behind it, so they are applied in the order the agent sent them. A snapshot replaces
the container reports before it (it is the whole truth); past `limit` the oldest deltas go (the agent's periodic
snapshot covers them), so memory stays bounded however long the outage lasts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from corral.model import protocol

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
