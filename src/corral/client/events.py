"""Following the server's events over `/v1/events`: reconnects and resumes from the last version it saw.

Why here and not in each caller: a follower that reconnects must pass `since_version` (the last event or bookmark
it got) and drop what it already had, or a server restart or a dropped connection loses or repeats events; the
CLI's `corral events -f` and tests use this one loop. When the server no longer keeps what came after that version
it answers `resync-required` (close code 4410), raised here as `EventsGone` carrying the version to go on from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from corral.client.http import CorralClient
from corral.model.errors import CorralError, Gone
from corral.model.watch import BOOKMARK, GONE_CLOSE_CODE, RESYNC_REQUIRED, VersionGate

RETRY_FIRST, RETRY_MAX = 0.2, 5.0
REFUSED = {4401, 4403, 4404, 4422}  # the server refused the call itself: reconnecting will not help


class EventsGone(Gone):
    """The events after the version asked for are no longer kept; `version` is where the server is now."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message, field="since_version")
        self.version = version


def follow_events(
    client: CorralClient,
    environment: str | None = None,
    *,
    since_version: int | None = None,
    give_up_after: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event after `since_version` (after the server's newest one when None), each once and in order,
    reconnecting after a drop or a server restart; gives up (raising the last error) after `give_up_after` seconds
    without a connection (None: never)."""
    if since_version is None:
        since_version = int(client.events(environment, limit=1).get("version") or 0)
    gate = VersionGate(since_version)
    delay, down_since = RETRY_FIRST, None
    while True:
        try:
            with connect(_url(client, environment, gate.last), **_options(client)) as socket:
                delay, down_since = RETRY_FIRST, None
                for raw in socket:
                    message = json.loads(raw)
                    version = message.get("version")
                    if message.get("type") == RESYNC_REQUIRED:
                        raise EventsGone(str(message.get("reason") or "history gone"), int(version or 0))
                    if message.get("type") == BOOKMARK and version is not None:
                        gate.passed(int(version))
                    elif version is None or gate.admit(int(version)):
                        yield message
            _refused(socket.close_code, socket.close_reason)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            _refused(code, exc.rcvd.reason if exc.rcvd is not None else "")
            error: Exception = exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            error = exc
        else:
            error = ConnectionError("the server closed the event stream")
        now = time.monotonic()
        down_since = down_since or now
        if give_up_after is not None and now - down_since > give_up_after:
            raise error
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)


def _refused(code: int | None, reason: str | None) -> None:
    if code == GONE_CLOSE_CODE:
        raise EventsGone(reason or "history gone", 0)
    if code in REFUSED:
        raise CorralError(reason or f"the server refused the event stream ({code})")


def _url(client: CorralClient, environment: str | None, since_version: int) -> str:
    base = client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    query = {"since_version": str(since_version)} | ({"environment": environment} if environment else {})
    return f"{base}/v1/events?{httpx.QueryParams(query)}"


def _options(client: CorralClient) -> dict[str, Any]:
    secure = client.ssl_context if client.url.startswith("https:") else None
    return {"additional_headers": dict(client.auth_headers), "ssl": secure, "open_timeout": 10, "max_size": None}
