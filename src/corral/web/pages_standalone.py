"""UI page: the current environment's standalone containers (`corral run`) — listed with stop, start and remove,
and a "Run container" form.

Why a page of its own (`/ui/containers`): standalone containers belong to no stack, so the stacks pages never show
them; each row links to the container page every container has (logs, stats, shell). The form sends what `corral
run -d` sends and shows the API's error (naming the field) above the form as typed, so nothing is lost.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.model.access import Resource
from corral.model.errors import CorralError, NotFound
from corral.web.permissions import may_change
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
FormText = Annotated[str, Form()]
ACTIONS = ("stop", "start", "remove")
RESTARTS = ("no", "always", "on-failure", "unless-stopped")
EMPTY_FORM = {"name": "", "image": "", "command": "", "env": "", "ports": "", "labels": "", "host": "", "restart": "no"}


def _environment(session: Session) -> str:
    if not session.environment_id:
        environments_of(session)
    return session.environment_id


def _page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
    containers: list[dict[str, Any]] = []
    hosts: list[dict[str, Any]] = []
    error = context.pop("error", "")
    environment = _environment(session)
    if environment:
        try:
            client = session.client()
            containers = client.standalone.list(environment)
            hosts = client.list_hosts(environment)
        except CorralError as exc:
            error = error or exc.message
    context.setdefault("form", dict(EMPTY_FORM))
    return render(
        request,
        session,
        "standalone.html",
        status,
        containers=containers,
        hosts=sorted(h["name"] for h in hosts),
        restarts=RESTARTS,
        error=error,
        can_change=may_change(session, Resource.STACKS),
        **context,
    )


def _pairs(text: str) -> dict[str, str]:
    """`KEY=VALUE` lines (blank lines skipped); a line without `=` keeps an empty value, which the API refuses
    by name when the key is invalid."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


@router.get("/containers")
def standalone_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/containers")
def run_container(
    request: Request,
    session: PostSession,
    image: FormText = "",
    name: FormText = "",
    command: FormText = "",
    env: FormText = "",
    ports: FormText = "",
    labels: FormText = "",
    host: FormText = "",
    restart: FormText = "no",
) -> Response:
    form = {
        "name": name, "image": image, "command": command, "env": env, "ports": ports, "labels": labels,
        "host": host, "restart": restart,
    }  # fmt: skip
    try:
        session.client().standalone.run(
            _environment(session) or "default",
            image.strip(),
            name=name.strip() or None,
            command=command.split() or None,
            env=_pairs(env) or None,
            ports=ports.split() or None,
            labels=_pairs(labels) or None,
            host=host.strip() or None,
            restart=restart,
        )
    except CorralError as exc:
        return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message, form=form)
    return RedirectResponse("/ui/containers", status_code=303)


@router.post("/containers/standalone/{container_id}/{action}")
def container_action(request: Request, container_id: str, action: str, session: PostSession) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}", field="action")
    client = session.client()
    try:
        if action == "remove":
            client.standalone.remove(container_id)
        else:
            client.stacks.container_action(container_id, action)
    except CorralError as exc:
        return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message)
    return RedirectResponse("/ui/containers", status_code=303)
