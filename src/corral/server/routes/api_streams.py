"""Logs, stats and exec of containers, streamed from the agent of the container's host over its websocket.

Why through the agent: hosts accept no inbound connections (the agent dials out), so the server relays: an HTTP
response or a client websocket on one side, a request/stream on the agent's socket on the other. A stream is always
closed on the agent when the client goes away.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from corral.model import protocol
from corral.model.entities import Principal
from corral.model.errors import Conflict, CorralError, InvalidInput
from corral.server.hub.hub import AgentHub
from corral.server.hub.stream_relay import Stream
from corral.server.security.auth import authenticate_request, require_admin
from corral.server.shared.bodies import Strict
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.standalone_views import slot_of
from corral.store.repository import Store
from corral.store.stacks import StackStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
MAX_EXEC_OUTPUT = 4 * 1024 * 1024


class ExecBody(Strict):
    cmd: list[str] = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0, le=3600)


def _target(store: Store, stacks: StackStore, container_id: str) -> tuple[str, str]:
    """(host id, docker id) of a Corral container that exists on its host."""
    record = slot_of(stacks, container_id)  # a slot's id, or a standalone container's
    state = EnvironmentState.load(store, stacks, record.slot.environment_id)
    observed = state.observed.get(record.slot.id)
    if observed is None:
        raise Conflict(f"container {record.slot.name} has not been created on its host yet", field="container")
    return record.slot.host_id, observed.docker_id


async def _resolve(app_state: Any, container_id: str) -> tuple[AgentHub, str, str]:
    host_id, docker_id = await run_in_threadpool(_target, app_state.store, app_state.stacks, container_id)
    return app_state.hub, host_id, docker_id


def _chunk(message: protocol.Message) -> bytes:
    data = message.data.get("data")
    return base64.b64decode(data) if isinstance(data, str) else b""


@router.get("/containers/{container_id}/logs")
async def container_logs(
    request: Request,
    container_id: str,
    _: Admin,
    follow: Annotated[bool, Query()] = False,
    tail: Annotated[int | None, Query(ge=0)] = None,
    timestamps: Annotated[bool, Query()] = False,
    since: Annotated[float | None, Query(ge=0, description="Only output at or after this UNIX time.")] = None,
) -> StreamingResponse:
    hub, host_id, docker_id = await _resolve(request.app.state, container_id)
    wanted: dict[str, Any] = {"docker_id": docker_id, "follow": follow, "tail": tail, "timestamps": timestamps}
    if since is not None:
        wanted["since"] = since
    stream = await hub.relay.open_stream(host_id, protocol.LOGS, wanted)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                message = await hub.relay.next_message(stream)
                if message.type == protocol.END:
                    error = message.data.get("error")
                    if error:
                        yield f"\n[corral: {error}]\n".encode()
                    return
                yield _chunk(message)
        finally:
            await hub.relay.close_stream(stream)

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.get("/containers/{container_id}/stats")
async def container_stats(
    request: Request, container_id: str, _: Admin, stream: Annotated[bool, Query()] = True
) -> StreamingResponse:
    """Resource use as NDJSON: one sample a second while `stream` (until the container stops), else one sample.
    A failure ends the stream with a line `{"error": ...}`."""
    hub, host_id, docker_id = await _resolve(request.app.state, container_id)
    agent_stream = await hub.relay.open_stream(host_id, protocol.STATS, {"docker_id": docker_id, "stream": stream})

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                message = await hub.relay.next_message(agent_stream)
                if message.type == protocol.END:
                    error = message.data.get("error")
                    if error and error != "cancelled":
                        yield json.dumps({"error": error}).encode() + b"\n"
                    return
                yield _chunk(message)
        finally:
            await hub.relay.close_stream(agent_stream)

    return StreamingResponse(body(), media_type="application/x-ndjson")


@router.post("/containers/{container_id}/exec")
async def container_exec(request: Request, container_id: str, body: ExecBody, _: Admin) -> dict[str, Any]:
    """Run a command in a container without a terminal; returns its exit code and output."""
    hub, host_id, docker_id = await _resolve(request.app.state, container_id)
    stream = await hub.relay.open_stream(
        host_id, protocol.EXEC, {"docker_id": docker_id, "cmd": body.cmd, "tty": False, "interactive": False}
    )
    output: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    try:
        async with asyncio.timeout(body.timeout):
            while True:
                message = await hub.relay.next_message(stream)
                if message.type == protocol.END:
                    break
                target = output.get(str(message.data.get("stream")), output["stdout"])
                if len(target) < MAX_EXEC_OUTPUT:
                    target.extend(_chunk(message)[: MAX_EXEC_OUTPUT - len(target)])
    except TimeoutError:
        raise Conflict(f"the command did not finish within {body.timeout:g} s", field="timeout") from None
    finally:
        await hub.relay.close_stream(stream)
    if message.data.get("error"):
        raise Conflict(str(message.data["error"]), field="cmd")
    return {
        "exit_code": message.data.get("exit_code"),
        "stdout": output["stdout"].decode(errors="replace"),
        "stderr": output["stderr"].decode(errors="replace"),
    }


@router.websocket("/containers/{container_id}/exec")
async def container_exec_interactive(
    websocket: WebSocket, container_id: str, cmd: Annotated[list[str] | None, Query()] = None, tty: bool = True
) -> None:
    """Interactive exec: binary frames are stdin/stdout, a text frame `{"resize": [rows, cols]}` resizes the
    terminal, `{"eof": true}` closes stdin; the server ends with a text frame `{"exit_code": N}`."""
    await websocket.accept()
    try:
        address = websocket.client.host if websocket.client else ""
        await authenticate_request(websocket.app.state, websocket.headers.get("authorization"), address)
        if not cmd:
            raise InvalidInput("cmd is required", field="cmd")
        hub, host_id, docker_id = await _resolve(websocket.app.state, container_id)
        stream = await hub.relay.open_stream(
            host_id, protocol.EXEC, {"docker_id": docker_id, "cmd": cmd, "tty": tty, "interactive": True}
        )
    except CorralError as exc:
        await websocket.send_text(json.dumps({"error": exc.message}))
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    pump = asyncio.create_task(_client_to_agent(websocket, hub, stream))
    try:
        while True:
            message = await hub.relay.next_message(stream)
            if message.type == protocol.END:
                await websocket.send_text(
                    json.dumps({"exit_code": message.data.get("exit_code"), "error": message.data.get("error")})
                )
                break
            await websocket.send_bytes(_chunk(message))
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await hub.relay.close_stream(stream)


async def _client_to_agent(websocket: WebSocket, hub: AgentHub, stream: Stream) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                await hub.relay.close_stream(stream)
                return
            if frame.get("bytes") is not None:
                data = base64.b64encode(frame["bytes"]).decode()
                await hub.relay.send_to_stream(stream, protocol.STDIN, {"data": data})
            elif frame.get("text") is not None:
                control = json.loads(frame["text"])
                if isinstance(control, dict) and isinstance(control.get("resize"), list):
                    rows, cols = control["resize"][:2]
                    await hub.relay.send_to_stream(stream, protocol.RESIZE, {"rows": int(rows), "cols": int(cols)})
                elif isinstance(control, dict) and control.get("eof"):
                    await hub.relay.send_to_stream(stream, protocol.STDIN, {"data": "", "eof": True})
