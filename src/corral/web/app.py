"""The web UI: server-rendered pages under /ui, mounted into the server's own application (no separate process).

Why it sits beside the CLI in the layers: the UI is another client of the `/v1` API. Pages call the API through
`corral.client` with the key pair of the logged-in session; the browser never sees that key pair, only an HttpOnly
session cookie. Every page and form post is checked here for a session, same origin and the CSRF token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Request, WebSocket
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.client import CorralClient
from corral.client.access import AccessClient
from corral.model.errors import CorralError, Unauthorized
from corral.web import (
    pages_access,
    pages_catalog,
    pages_certificates,
    pages_containers,
    pages_events,
    pages_host_usage,
    pages_hosts,
    pages_images,
    pages_keys,
    pages_registries,
    pages_secrets,
    pages_stack_actions,
    pages_stack_plan,
    pages_stacks,
    pages_standalone,
    pages_volumes,
)
from corral.web.relay import relay, websocket_url
from corral.web.rendering import render
from corral.web.security import SECURITY_HEADERS, add_security_headers, cookie_should_be_secure, same_origin
from corral.web.sessions import COOKIE_NAME, SessionStore
from corral.web.shared import (
    CsrfFailed,
    LoginRequired,
    PageSession,
    PostSession,
    session_of_websocket,
)
from corral.web.vendor import vendor_path

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter()
log = logging.getLogger("corral.web")
FORWARDED_FOR = "X-Corral-Forwarded-For"  # server/security/auth.py reads them (same names)
FORWARD_TOKEN = "X-Corral-Forward-Token"  # noqa: S105 - a header name


def mount_ui(app: FastAPI, api_url: str, ca_file: Path | None = None) -> None:
    """Mount the UI at /ui of the server's app and send `/` there. `api_url` is how the UI reaches `/v1`, trusting
    the server's CA in `ca_file` over HTTPS.

    The server's `forward_token` (when it has one) lets the login probe name the browser's address, so that the
    API throttles failed logins per browser rather than blocking the UI's own loopback address."""
    ui = create_ui(api_url, ca_file)
    ui.state.forward_token = str(getattr(app.state, "forward_token", "") or "")
    app.mount("/ui", ui)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)


def create_ui(api_url: str, ca_file: Path | None = None) -> FastAPI:
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.sessions = SessionStore(api_url, ca_file)
    ui.middleware("http")(add_security_headers)
    ui.add_exception_handler(LoginRequired, _login_required)
    ui.add_exception_handler(CsrfFailed, _csrf_failed)
    ui.add_exception_handler(CorralError, _api_error)
    ui.add_exception_handler(StarletteHTTPException, _http_error)
    ui.add_exception_handler(Exception, _unexpected_error)
    ui.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    ui.include_router(router)
    pages = (
        pages_hosts,
        pages_host_usage,
        pages_stack_actions,  # before pages_stacks: its /stacks/{id}/{action} would take /stop and /upgrade
        pages_stack_plan,  # before pages_stacks too: /stacks/new/preview and /stacks/{id}/upgrade/preview
        pages_stacks,
        pages_standalone,  # before pages_containers: /containers/standalone/{id}/{action}
        pages_containers,
        pages_catalog,
        pages_events,
        pages_secrets,
        pages_registries,
        pages_certificates,
        pages_access,
        pages_keys,
        pages_volumes,
        pages_images,
    )
    for module in pages:
        ui.include_router(module.router)
    return ui


def _safe_next(value: str | None) -> str:
    """Only a path inside the UI may follow a login (no open redirect)."""
    if not value or not value.startswith("/ui/") or value.startswith("//") or urlsplit(value).netloc:
        return "/ui/"
    return value


@router.get("/vendor/{name}", include_in_schema=False)
def vendor_file(name: str) -> Response:
    path = vendor_path(name)
    if path is None:
        return Response(
            f"/* {name} is not installed: run `make setup` (npm ci in src/corral/web/assets) */\n",
            status_code=404,
            media_type="text/plain",
        )
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=media)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, None, "login.html", next=_safe_next(next), error="", access_key="", username="")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    access_key: Annotated[str, Form()] = "",
    secret_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    """A user name and password (traded for a session key pair by the API), or an API key pair."""
    shown = {"access_key": access_key, "username": username}
    if not same_origin(request):
        return render(request, None, "login.html", 403, next="/ui/", error="cross-site login refused", **shown)
    target = _safe_next(next)
    sessions: SessionStore = request.app.state.sessions
    forward = str(getattr(request.app.state, "forward_token", "") or "")
    browser = request.client.host if request.client else ""
    headers = {FORWARDED_FOR: browser, FORWARD_TOKEN: forward} if forward and browser else None
    try:
        if username.strip():
            if not password:
                raise Unauthorized("enter your password")
            with CorralClient(sessions.api_url, timeout=10, headers=headers, ca=sessions.ssl_context) as anonymous:
                signed_in = AccessClient(anonymous).login(username.strip(), password)
            access_key, secret_key, signed_out = signed_in["access_key"], signed_in["secret_key"], True
        else:
            if not access_key.strip() or not secret_key.strip():
                raise Unauthorized("enter your user name and password, or an access key and a secret key")
            access_key, secret_key, signed_out = access_key.strip(), secret_key.strip(), False
            with CorralClient(
                sessions.api_url, access_key, secret_key, timeout=10, headers=headers, ca=sessions.ssl_context
            ) as probe:
                probe.list_environments()
    except CorralError as exc:
        return render(request, None, "login.html", 401, next=target, error=exc.message, **shown)
    session = sessions.create(access_key, secret_key)
    session.ends_with_logout = signed_out
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        session.token,
        httponly=True,
        samesite="strict",
        secure=cookie_should_be_secure(request),
        path="/ui",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: PostSession) -> Response:
    if session.ends_with_logout:  # a password login's session key dies with it
        try:
            AccessClient(session.client()).logout()
        except CorralError as exc:
            log.warning("could not end the session key at logout: %s", exc.message)
    request.app.state.sessions.remove(session.token)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/ui")
    return response


@router.get("/")
def home(session: PageSession) -> Response:
    return RedirectResponse("/ui/stacks", status_code=303)


@router.websocket("/ws/events")
async def events_socket(websocket: WebSocket) -> None:
    """The session's environment's `/v1/events`, for live updates of the open page."""
    session = await session_of_websocket(websocket)
    if session is None:
        return
    environment = websocket.query_params.get("environment") or session.environment_id
    url = websocket_url(session.api_url, "/v1/events")
    if environment:
        url += "?environment=" + quote(environment, safe="")
    await relay(websocket, url, dict(session.client().auth_headers), session.ssl_context)


async def _login_required(request: Request, exc: Exception) -> Response:
    target = "/ui/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfFailed)
    return Response(f"forbidden: {exc.reason}\n", status_code=403, media_type="text/plain")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CorralError)
    if isinstance(exc, Unauthorized):
        return await _login_required(request, exc)
    session = await run_in_threadpool(request.app.state.sessions.get, request.cookies.get(COOKIE_NAME))
    if request.headers.get("hx-request"):  # a fragment; still a template to load (file I/O) on first use: a thread
        return await run_in_threadpool(render, request, session, "_error.html", exc.status, message=exc.message)
    # a full page looks up the environments through /v1 (sync HTTP to this very server): never on the event loop
    return await run_in_threadpool(
        render, request, session, "error.html", exc.status, message=exc.message, unavailable=exc.status == 503
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("UI error on %s %s", request.method, request.url.path, exc_info=exc)
    response = await run_in_threadpool(
        render, request, None, "error.html", 500, message="internal error in the UI (see the server log)"
    )
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    session = await run_in_threadpool(request.app.state.sessions.get, request.cookies.get(COOKIE_NAME))
    return await run_in_threadpool(render, request, session, "error.html", exc.status_code, message=str(exc.detail))
