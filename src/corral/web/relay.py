"""Relays between a browser websocket (authenticated by the session cookie) and a `/v1` websocket of the server
(authenticated by the session's key pair): the event stream and interactive exec.

Why relay instead of letting the browser call /v1: browsers cannot set an Authorization header on a websocket, and
the key pair must never reach the page. The relay is a thin pipe: frames pass unchanged in both directions and
either side closing closes the other (the server's close code and reason are passed on to the browser).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

# Close codes the browser sees: 4401 no session, 4403 foreign origin, 4502 the server-side socket failed.
CLOSE_NO_SESSION = 4401
CLOSE_FOREIGN_ORIGIN = 4403
CLOSE_UPSTREAM_FAILED = 4502
# What the relay may hold: frames are read from the server only as fast as the browser takes them (each send to
# the browser is awaited), so at most this many frames of this size wait in between; the server pauses the
# agent's stream behind it (server/hub/hub.py).
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_QUEUED_FRAMES = 4


def websocket_url(api_url: str, path: str) -> str:
    return api_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path


async def relay(
    browser: WebSocket, upstream_url: str, headers: dict[str, str], ssl_context: ssl.SSLContext | None = None
) -> None:
    """Pipe frames both ways until one side closes. The browser socket must already be accepted."""
    try:
        upstream = await websockets.connect(
            upstream_url,
            additional_headers=headers,
            max_size=MAX_FRAME_BYTES,
            max_queue=MAX_QUEUED_FRAMES,
            ssl=ssl_context if upstream_url.startswith("wss:") else None,
        )
    except (OSError, websockets.WebSocketException) as exc:
        await browser.close(code=CLOSE_UPSTREAM_FAILED, reason=f"server socket failed: {exc}"[:120])
        return
    async with upstream:
        to_browser = asyncio.create_task(_upstream_to_browser(upstream, browser))
        to_upstream = asyncio.create_task(_browser_to_upstream(browser, upstream))
        _, pending = await asyncio.wait({to_browser, to_upstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    code, reason = upstream.close_code, upstream.close_reason or ""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        # the server's own close code and reason (a refusal: "the read-only role may not ...") reach the page
        await browser.close(code=code if code is not None and code not in (1005, 1006, 1015) else 1000, reason=reason)


async def _upstream_to_browser(upstream: websockets.ClientConnection, browser: WebSocket) -> None:
    with contextlib.suppress(websockets.ConnectionClosed, WebSocketDisconnect, RuntimeError):
        async for frame in upstream:
            if isinstance(frame, bytes):
                await browser.send_bytes(frame)
            else:
                await browser.send_text(frame)


async def _browser_to_upstream(browser: WebSocket, upstream: websockets.ClientConnection) -> None:
    with contextlib.suppress(websockets.ConnectionClosed, WebSocketDisconnect, RuntimeError):
        while True:
            message = await browser.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])
