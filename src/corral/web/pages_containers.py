"""UI pages: one container — its summary (state, reason, health, host, addresses, ports, image, stack and service)
with stop / start / restart, its live logs, live resource charts, and an interactive shell.

Why the streams go through UI routes: the page's scripts hold only the session cookie, never the API key pair.
Logs and stats are relayed from `/v1` as HTTP streams (web/streams.py); the shell is a browser websocket relayed to
the exec websocket of `/v1` (web/relay.py). Everything else is plain server-rendered HTML with htmx for the actions
and the live summary.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, WebSocket
from starlette.responses import Response

from corral.model.errors import CorralError, InvalidInput, NotFound
from corral.web.relay import relay
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession, session_of_websocket
from corral.web.streams import relay_stream

router = APIRouter()

ACTIONS = ("stop", "start", "restart")
TAIL_CHOICES = ("100", "500", "2000", "all")
DEFAULT_TAIL = "100"
MAX_TAIL = 100_000
SHELL = ["sh"]


def _api_path(container_id: str, what: str) -> str:
    return f"/v1/containers/{quote(container_id, safe='')}/{what}"


def _container(session: Session, container_id: str) -> dict[str, Any]:
    return session.client().stacks.get_container(container_id)


def parse_tail(value: str) -> int | None:
    """The `tail` choice of the logs box: a number of lines, or "all" (None)."""
    text = value.strip().lower()
    if text == "all":
        return None
    if not text.isdigit() or int(text) > MAX_TAIL:
        raise InvalidInput(f"tail must be a number of lines from 0 to {MAX_TAIL}, or 'all'", field="tail")
    return int(text)


@router.get("/containers/{container_id}")
def container_page(request: Request, container_id: str, session: PageSession) -> Response:
    container = _container(session, container_id)
    return render(
        request,
        session,
        "container.html",
        container=container,
        tail_choices=TAIL_CHOICES,
        default_tail=DEFAULT_TAIL,
        error="",
    )


@router.get("/containers/{container_id}/summary")
def container_summary(request: Request, container_id: str, session: PageSession) -> Response:
    """The live part of the page (re-fetched on every event of the environment)."""
    return render(request, session, "_container_summary.html", container=_container(session, container_id), error="")


@router.post("/containers/{container_id}/{action}")
def container_action(request: Request, container_id: str, action: str, session: PostSession) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"unknown container action {action!r}: use one of {', '.join(ACTIONS)}", field="action")
    stacks = session.client().stacks
    try:
        container = stacks.container_action(container_id, action)
    except CorralError as exc:
        container = stacks.get_container(container_id)
        return render(request, session, "_container_summary.html", 409, container=container, error=exc.message)
    return render(request, session, "_container_summary.html", container=container, error="")


@router.get("/containers/{container_id}/logs")
async def container_logs(
    container_id: str, session: PageSession, tail: str = DEFAULT_TAIL, follow: bool = False
) -> Response:
    """The container's log as plain text, as it arrives (relayed from `/v1/containers/{id}/logs`)."""
    lines = parse_tail(tail)
    params: dict[str, str | int | bool] = {"follow": follow}
    if lines is not None:
        params["tail"] = lines
    return await relay_stream(session, _api_path(container_id, "logs"), params, "text/plain; charset=utf-8")


@router.get("/containers/{container_id}/stats")
async def container_stats(container_id: str, session: PageSession) -> Response:
    """Resource-use samples as NDJSON, about one a second (relayed from `/v1/containers/{id}/stats`)."""
    return await relay_stream(session, _api_path(container_id, "stats"), {"stream": True}, "application/x-ndjson")


@router.websocket("/ws/containers/{container_id}/exec")
async def container_shell(websocket: WebSocket, container_id: str) -> None:
    """A shell in the container: binary frames are the terminal's input and output, a text frame
    `{"resize": [rows, cols]}` resizes it, and the server's last text frame is `{"exit_code": N, "error": ...}`."""
    session = await session_of_websocket(websocket)
    if session is None:
        return
    url, headers = session.client().stacks.exec_socket(container_id, SHELL, tty=True)
    await relay(websocket, url, headers, session.ssl_context)
