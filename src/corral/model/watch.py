"""Resuming a stream from a version: the rules a server and a client share (issue 15, item 4).

Why here: the events websocket and a collection's watch (server/routes/event_stream.py, server/routes/watch.py) replay
what was kept and then go live, and the client (client/events.py) reconnects and resumes from the last version it saw;
each must pass every version once, in order, whichever path brought it. A watch tells a collection's changes as
Kubernetes does, ADDED/MODIFIED/DELETED with the item as the list renders it, from the difference of two renders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
RESYNC_REQUIRED = "resync-required"  # the first and last message when the history no longer reaches back
BOOKMARK = "bookmark"  # "you have everything up to this version" (sent after a replay, and by watches when idle)
GONE_CLOSE_CODE = 4410  # 4000 + HTTP 410 Gone, as the Kubernetes apiserver answers a too old resourceVersion


class VersionGate:
    """Lets each version through once, in increasing order: a version at or below the last one passed is a
    duplicate (a replayed event that also came live, or one seen before a reconnect)."""

    def __init__(self, after: int = 0) -> None:
        self.last = after

    def admit(self, version: int) -> bool:
        if version <= self.last:
            return False
        self.last = version
        return True

    def passed(self, through: int) -> None:
        """Everything up to `through` was seen (or does not concern this stream)."""
        self.last = max(self.last, through)


def merged(after: int, *streams: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """What a subscriber gets from streams read one after the other (the replay, then the live queue)."""
    gate = VersionGate(after)
    return [event for stream in streams for event in stream if gate.admit(int(event["version"]))]


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The watch events that take a client from the items `before` (id -> rendered item) to `after`: ADDED and
    MODIFIED in `after`'s order, then DELETED (with the item as it was last seen)."""
    found: list[tuple[str, Any]] = []
    for key, item in after.items():
        old = before.get(key)
        if old is None:
            found.append((ADDED, item))
        elif old != item:
            found.append((MODIFIED, item))
    found.extend((DELETED, item) for key, item in before.items() if key not in after)
    return found
