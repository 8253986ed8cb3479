"""Warm the application's routing up at start, before the first client is served.

Why: FastAPI (0.16x) builds the routes of every included router lazily, on the first request that scans that router:
each route's dependency tree and parameter models, for all the routes of the router at once. The first request that
reaches the UI scans every router of `/v1` and of the UI (about a second of CPU on an idle machine, 1.9 s measured under
a load average of 14), and it does so on the event loop, where every agent session, event stream and websocket
handshake waits behind it (the loop watchdog, server/shared/loop_watchdog.py, caught it: a 2.1 s stall inside
`_IncludedRouter._match`). One in-process request for a path no route takes, sent through the whole application
during the lifespan's start-up (uvicorn reads no connection before that ends), builds all of it then; it also builds
the middleware stack and loads the 404 page's templates. Only the public ASGI interface is used, so a FastAPI that
routes eagerly just answers a 404 here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message

log = logging.getLogger("corral.server")

# no route takes it; under /ui so that the UI's routers (mounted there) are scanned after every router of the API's
WARM_UP_PATH = "/ui/.corral-warm-up"


async def warm_up_routing(app: ASGIApp, path: str = WARM_UP_PATH) -> int:
    """Send one GET for `path` through `app` in-process; returns its status (404 when no route takes it)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"warm-up.invalid")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "state": {},
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    started = time.monotonic()
    await app(scope, receive, send)
    log.info("routing warmed up in %.2f s (GET %s: %d)", time.monotonic() - started, path, status)
    return status
