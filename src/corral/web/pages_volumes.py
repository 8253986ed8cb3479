"""UI page: the current environment's volumes (issue 18) — every volume with scope, driver, state, the hosts that
hold it and the containers using it; create an environment volume, remove one.

Why the remove button stays on a volume in use: the API decides (409 naming the containers, or the host that does
not answer) and the page shows that reason; a button hidden by a stale page would hide the why. Forms show only to
roles that may change volumes (containers' rights: restricted and above), as the API enforces anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.model.access import Resource
from corral.model.errors import CorralError
from corral.web.permissions import may_change
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
FormText = Annotated[str, Form()]
SETTLE_SECONDS = 5.0  # how long a change waits for the agents' next reports to show it in the list


def settle(listed: Callable[[], bool], seconds: float = SETTLE_SECONDS) -> None:
    """Wait (bounded) until the list shows a change the agents made: each answers a request before it reports
    its engine again, so a page read at once could still show what was just removed."""
    deadline = time.monotonic() + seconds
    while not listed() and time.monotonic() < deadline:
        time.sleep(0.1)


def _environment(session: Session) -> str:
    if not session.environment_id:
        environments_of(session)
    return session.environment_id


def _page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
    volumes: list[dict[str, Any]] = []
    error = context.pop("error", "")
    environment = _environment(session)
    if environment:
        try:
            volumes = session.client().volumes.list(environment)
        except CorralError as exc:
            error = error or exc.message
    context.setdefault("form", {"name": "", "driver": "local"})
    return render(
        request,
        session,
        "volumes.html",
        status,
        volumes=volumes,
        error=error,
        can_change=may_change(session, Resource.STACKS),
        **context,
    )


def _refused(request: Request, session: Session, exc: CorralError, **context: Any) -> HTMLResponse:
    return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message, **context)


@router.get("/volumes")
def volumes_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/volumes")
def create_volume(request: Request, session: PostSession, name: FormText = "", driver: FormText = "") -> Response:
    try:
        environment = _environment(session) or "default"
        created = session.client().volumes.create(environment, name.strip(), driver=driver.strip() or "local")
        made = {h["name"] for h in created["hosts"] if not h["error"]}
        settle(lambda: made <= _holders(session, environment, name.strip()))
    except CorralError as exc:
        return _refused(request, session, exc, form={"name": name, "driver": driver})
    failed = [f"{h['name']}: {h['error']}" for h in created["hosts"] if h["error"]]
    if failed:  # made where it could be; the hosts that refused are named, not dropped
        return _page(request, session, error=f"volume {name.strip()} not made on " + "; ".join(failed))
    return RedirectResponse("/ui/volumes", status_code=303)


def _holders(session: Session, environment: str, name: str) -> set[str]:
    """The names of the hosts whose engines report the volume."""
    listed = session.client().volumes.list(environment)
    return {h["name"] for v in listed if v["name"] == name for h in v["hosts"]}


@router.post("/volumes/{name}/delete")
def remove_volume(request: Request, name: str, session: PostSession) -> Response:
    try:
        environment = _environment(session) or "default"
        session.client().volumes.delete(environment, name)
        settle(lambda: all(v["name"] != name for v in session.client().volumes.list(environment)))
    except CorralError as exc:
        return _refused(request, session, exc, refused=name)
    return RedirectResponse("/ui/volumes", status_code=303)
