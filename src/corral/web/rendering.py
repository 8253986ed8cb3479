"""Jinja2 rendering for the UI: one environment with autoescaping on, the page context every template shares, and
the small formatting filters (ages, sizes, state colours).

Why one place: escaping is never a template author's choice, and every page gets the same navigation, environment
switcher and CSRF token.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from corral.model.errors import CorralError
from corral.model.service_state import ServiceState
from corral.web.security import cookie_should_be_secure
from corral.web.sessions import Session

TEMPLATES_DIR = Path(__file__).parent / "templates"

_STATE_CLASSES = {
    "active": "ok",
    "running": "ok",
    "healthy": "ok",
    "upgraded": "info",
    "upgrading": "info",
    "activating": "info",
    "provisioning": "info",
    "starting": "info",  # transitional container states (server/views/stack_views.py container_state)
    "stopping": "info",
    "removing": "info",
    "reconnecting": "warn",
    "initializing": "info",
    "pending": "warn",
    "degraded": "warn",
    "inactive": "muted",
    "stopped": "muted",
    "exited": "muted",
    "removed": "muted",
    "evacuating": "warn",
    "disconnected": "bad",
    "detached": "warn",  # a volume only hosts that do not answer hold (model/volumes.py)
    "engine-down": "bad",
    "unknown": "warn",
    "error": "bad",
    "unhealthy": "bad",
    "upgrade-error": "bad",
    ServiceState.RESTARTING: "info",
    ServiceState.ROLLING_BACK: "info",
    ServiceState.ROLLBACK_ERROR: "bad",
}


def state_class(state: object) -> str:
    return "state state-" + _STATE_CLASSES.get(str(state or "").lower(), "muted")


def age(timestamp: object) -> str:
    """'12s', '5m', '3h', '2d' since a Unix timestamp; '' when unknown."""
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return ""
    seconds = max(0, int(time.time() - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def utc(timestamp: object) -> str:
    """'2026-12-05 10:00 UTC'; '' when unknown."""
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def human_bytes(value: object) -> str:
    if not isinstance(value, int | float) or value < 0:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def short_id(value: object, length: int = 12) -> str:
    return str(value or "")[:length]


templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(state_class=state_class, age=age, utc=utc, human_bytes=human_bytes, short_id=short_id)


def environments_of(session: Session) -> list[dict[str, Any]]:
    """The environments for the switcher; also fixes the session's current environment if it vanished."""
    environments = session.client().list_environments()
    ids = [env["id"] for env in environments]
    if session.environment_id not in ids:
        session.environment_id = ids[0] if ids else ""
    return environments


def render(
    request: Request, session: Session | None, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A whole page (base layout) or, for templates that are fragments, just the fragment."""
    environments: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    if session is not None and not template.startswith("_"):
        try:
            environments = environments_of(session)
        except CorralError:
            environments = []
        current = next((env for env in environments if env["id"] == session.environment_id), None)
    body = templates.get_template(template).render(
        request=request,
        session=session,
        csrf_token=session.csrf_token if session else "",
        environments=environments,
        environment=current,
        insecure_cookie=not cookie_should_be_secure(request),
        insecure_http=request.url.scheme == "http",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(body, status_code=status_code)
