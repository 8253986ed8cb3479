"""An in-process event bus feeding `/v1/events` websockets.

Why: every resource change (environment, host, token, container) is published once, from whichever thread made it,
and fanned out to subscribers without blocking the publisher; a subscriber that cannot keep up loses its oldest
events (and is told so) rather than stalling the server.

Why each event gets its `version` here, on the event loop: one thread numbers them, so versions grow in the order
subscribers receive them; the history keeps that number as the row's id (store/events.py), and a subscriber that
learns the bus's `current` version when it subscribes gets every later event from its queue, every earlier one from
the history (server/routes/event_stream.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SUBSCRIBER_QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_SIZE))
    environment_id: str | None = None
    dropped: int = 0


class EventBus:
    def __init__(self, recorders: Sequence[Callable[[dict[str, Any]], None]] = ()) -> None:
        self._subscribers: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sequence = 0
        self.recorders = list(recorders)  # e.g. the history (server/shared/event_history.py)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def current(self) -> int:
        """The version of the newest event published (0 before the first)."""
        return self._sequence

    def start_at(self, version: int) -> None:
        """The next event gets `version + 1` (at start: after every version an earlier run may have given out)."""
        self._sequence = version

    def subscribe(self, environment_id: str | None = None) -> Subscription:
        subscription = Subscription(environment_id=environment_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(
        self, resource_type: str, action: str, resource: dict[str, Any], environment_id: str | None = None
    ) -> None:
        """Thread-safe: may be called from the event loop or from a worker thread."""
        event = {
            "type": "resource.change",
            "resource_type": resource_type,
            "action": action,
            "id": resource.get("id"),
            "environment_id": environment_id,
            "time": time.time(),
            "data": resource,
        }
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event)
        else:
            loop.call_soon_threadsafe(self._fan_out, event)

    def _fan_out(self, event: dict[str, Any]) -> None:
        self._sequence += 1
        event["sequence"] = event["version"] = self._sequence
        for record in self.recorders:
            record(event)
        for subscription in list(self._subscribers):
            if subscription.environment_id not in (None, event["environment_id"]):
                continue
            if subscription.queue.full():
                subscription.queue.get_nowait()
                subscription.dropped += 1
            subscription.queue.put_nowait(event)
