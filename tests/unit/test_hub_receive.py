"""An agent's socket closed under the hub's receive loop (a failed send, uvicorn's keepalive) is a disconnect like
any other, not an unhandled error of the ASGI handler (bench/c1m.py logged dozens per run)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from corral.server.hub.hub import receive_text


def _socket(*incoming: dict[str, Any]) -> WebSocket:
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        raise OSError("connection reset")  # the peer is gone: Starlette marks the socket disconnected

    socket = WebSocket({"type": "websocket", "path": "/v1/agent", "headers": []}, receive, send)
    socket.client_state = socket.application_state = WebSocketState.CONNECTED
    return socket


def test_a_text_frame_is_returned() -> None:
    assert asyncio.run(receive_text(_socket({"type": "websocket.receive", "text": "hi"}))) == "hi"


def test_a_socket_closed_by_a_failed_send_is_a_disconnect() -> None:
    socket = _socket({"type": "websocket.receive", "text": "never read"})
    with pytest.raises(WebSocketDisconnect):  # the send's own failure, which the hub's send path swallows
        asyncio.run(socket.send_text("state"))
    assert socket.application_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnect) as caught:
        asyncio.run(receive_text(socket))
    assert caught.value.code == 1006


def test_the_client_closing_stays_a_disconnect() -> None:
    with pytest.raises(WebSocketDisconnect) as caught:
        asyncio.run(receive_text(_socket({"type": "websocket.disconnect", "code": 1011})))
    assert caught.value.code == 1011
