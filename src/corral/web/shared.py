"""What every UI route uses: the session dependencies (page, form post, websocket) and their failures.

Why dependencies: no page can forget the login check, and no form post can forget the origin and CSRF checks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from corral.web.relay import CLOSE_FOREIGN_ORIGIN, CLOSE_NO_SESSION
from corral.web.security import csrf_valid, same_origin
from corral.web.sessions import COOKIE_NAME, Session, SessionStore

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form."""


class CsrfFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _select_environment(request: Request, session: Session) -> None:
    chosen = request.query_params.get("env")
    if chosen:
        session.environment_id = chosen


def require_session(request: Request) -> Session:
    """A page's session; `?env=ID` switches the session's environment."""
    sessions: SessionStore = request.app.state.sessions
    session = sessions.get(request.cookies.get(COOKIE_NAME))
    if session is None:
        raise LoginRequired()
    _select_environment(request, session)
    return session


async def require_post_session(request: Request) -> Session:
    """A form post's session: same origin and the session's CSRF token (header or form field) are required."""
    sessions: SessionStore = request.app.state.sessions
    session = await run_in_threadpool(sessions.get, request.cookies.get(COOKIE_NAME))
    if not same_origin(request):
        raise CsrfFailed("cross-site request refused")
    if session is None:
        raise LoginRequired()
    presented = request.headers.get(CSRF_HEADER)
    if not presented and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_valid(session.csrf_token, presented):
        raise CsrfFailed("missing or wrong CSRF token")
    return session


PageSession = Annotated[Session, Depends(require_session)]
PostSession = Annotated[Session, Depends(require_post_session)]


async def session_of_websocket(websocket: WebSocket) -> Session | None:
    """Accept the browser's websocket, then close it (and return None) unless it is same-origin with a session."""
    await websocket.accept()
    if not same_origin(websocket):
        await websocket.close(code=CLOSE_FOREIGN_ORIGIN, reason="foreign origin refused")
        return None
    sessions: SessionStore = websocket.app.state.sessions
    session = await run_in_threadpool(sessions.get, websocket.cookies.get(COOKIE_NAME))
    if session is None:
        await websocket.close(code=CLOSE_NO_SESSION, reason="log in first")
        return None
    return session
