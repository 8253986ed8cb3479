"""The `/v1/events` websocket: live events, resumable from a version without a gap or a duplicate.

Why subscribe first, then replay: the subscription is made on the event loop, where the bus numbers events, so the
bus's `current` version at that moment splits the stream exactly: every later event arrives in the queue, every
earlier one is in the history (flushed first, then read from the database). A `since_version=N` client gets the
kept events in (N, current], then the queue; a `VersionGate` drops anything already passed. A subscriber that falls
behind (its queue overflowed) is caught up from the history the same way instead of losing events. When the history
no longer reaches back to N, the client is told so (`resync-required`, then close code 4410) and re-lists.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from corral.model.errors import CorralError
from corral.model.watch import BOOKMARK, GONE_CLOSE_CODE, RESYNC_REQUIRED, VersionGate
from corral.server.shared.event_history import EventHistory
from corral.server.shared.events import EventBus, Subscription
from corral.store.events import PAGE_LIMIT


class _Gone(Exception):
    pass


async def stream_events(
    websocket: WebSocket, bus: EventBus, history: EventHistory, environment_id: str | None, since: int | None
) -> None:
    subscription = bus.subscribe(environment_id)  # before the accept: the client misses nothing after it
    through = bus.current
    await websocket.accept()
    receiver = asyncio.create_task(_drain_client(websocket))
    gate = VersionGate(through if since is None else since)
    try:
        if since is not None:
            await _replay(websocket, bus, history, environment_id, gate, through)
            await websocket.send_json({"type": BOOKMARK, "version": gate.last})
        await _live(websocket, bus, history, subscription, gate, receiver)
    except _Gone as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            message = {"type": RESYNC_REQUIRED, "version": bus.current, "reason": str(exc)}
            await websocket.send_json(message)
            await websocket.close(code=GONE_CLOSE_CODE, reason=str(exc)[:120])
    except CorralError as exc:  # the database did not answer the replay
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        bus.unsubscribe(subscription)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _live(
    websocket: WebSocket,
    bus: EventBus,
    history: EventHistory,
    subscription: Subscription,
    gate: VersionGate,
    receiver: asyncio.Task[None],
) -> None:
    while not receiver.done():
        getter = asyncio.create_task(subscription.queue.get())
        done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            return
        event: dict[str, Any] = getter.result()
        if subscription.dropped:  # the queue overflowed: what it lost comes from the history
            subscription.dropped = 0
            await _replay(websocket, bus, history, subscription.environment_id, gate, bus.current)
        if gate.admit(event["version"]):
            await websocket.send_json(event)


async def _replay(
    websocket: WebSocket,
    bus: EventBus,
    history: EventHistory,
    environment_id: str | None,
    gate: VersionGate,
    through: int,
) -> None:
    """Send the events in (gate.last, through] of the environment (all for None), oldest first."""
    await history.flush()  # every event up to `through` was handed to the history before it was queued
    cursor = gate.last
    while True:
        reason = history.gone(cursor, bus.current)
        if reason is not None:
            raise _Gone(reason)
        if cursor >= through:
            break
        page = await run_in_threadpool(history.events.after, cursor, through, environment_id, PAGE_LIMIT)
        if history.horizon() > cursor:  # pruned while we read: the page may lack the oldest
            raise _Gone(f"version {cursor} fell out of the kept history during the replay")
        for event in page:
            if gate.admit(event["version"]):
                await websocket.send_json(event)
        if len(page) < PAGE_LIMIT:
            break
        cursor = page[-1]["version"]
    for event in history.unsaved(gate.last, through, environment_id):  # a flush the database refused
        if gate.admit(event["version"]):
            await websocket.send_json(event)
    gate.passed(through)


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so that a close from its side ends the stream."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
