"""UI page: API keys — the signed-in user's own keys, and the current environment's keys (for roles that manage
them): create (the secret is shown on that one answer), list (description, created, last used, expiry), revoke.

Why the answer to a create is a page and not a redirect: the secret is in that answer only; the API never lists it,
so a reload or the next page can never show it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.client.access import AccessClient
from corral.model.access import Action, Resource, Role, permits
from corral.model.errors import CorralError
from corral.web.permissions import role_here
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
FormText = Annotated[str, Form()]
EXPIRIES = ("30d", "90d", "365d", "never")


def _when(at: object) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at)) if isinstance(at, int | float) and at else "never"


def _page(
    request: Request, session: Session, status: int = 200, error: str = "", new_key: dict[str, Any] | None = None
) -> HTMLResponse:
    if not session.environment_id:
        environments_of(session)
    access = AccessClient(session.client())
    me = access.me()
    role = role_here(session, me)
    sees = bool(session.environment_id) and permits(role, Resource.KEYS, Action.READ)
    manages = sees and permits(role, Resource.KEYS, Action.WRITE)
    own: list[dict[str, Any]] = []
    environment_keys: list[dict[str, Any]] = []
    try:
        own = access.list_keys() if me["user_id"] else []
        if sees:
            environment_keys = access.list_keys(session.environment_id)
    except CorralError as exc:
        error = error or exc.message
    grantable = [r.value for r in Role if role is not None and role.at_least(r)]
    return render(
        request,
        session,
        "keys.html",
        status,
        me=me,
        keys=sorted(own, key=lambda k: -float(k.get("created_at") or 0)),
        environment_keys=sorted(environment_keys, key=lambda k: -float(k.get("created_at") or 0)),
        sees=sees,
        manages=manages,
        roles=grantable,
        expiries=EXPIRIES,
        new_key=new_key,
        error=error,
        when=_when,
    )


def _status(exc: CorralError) -> int:
    return exc.status if exc.status < 500 else 422


@router.get("/keys")
def keys_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


def _created(request: Request, session: Session, create: Callable[[AccessClient], dict[str, Any]]) -> HTMLResponse:
    try:
        key = create(AccessClient(session.client()))
    except CorralError as exc:
        return _page(request, session, _status(exc), exc.message)
    return _page(request, session, 201, new_key=key)


@router.post("/keys")
def create_key(
    request: Request, session: PostSession, description: FormText = "", expires: FormText = "never"
) -> HTMLResponse:
    """A key of the user's own account, with the user's rights everywhere."""
    return _created(
        request, session, lambda a: a.create_key(description=description.strip(), expires=expires or "never")
    )


@router.post("/keys/environment")
def create_environment_key(
    request: Request,
    session: PostSession,
    description: FormText = "",
    role: FormText = "read-only",
    expires: FormText = "never",
) -> HTMLResponse:
    """A key that reaches the current environment only, with a role no higher than the creator's."""
    return _created(
        request,
        session,
        lambda a: a.create_key(
            environment=session.environment_id or "default",
            role=role,
            description=description.strip(),
            expires=expires or "never",
        ),
    )


@router.post("/keys/{access_key}/revoke")
def revoke_key(request: Request, access_key: str, session: PostSession) -> Response:
    try:
        AccessClient(session.client()).delete_key(access_key)
    except CorralError as exc:
        return _page(request, session, _status(exc), exc.message)
    return RedirectResponse("/ui/keys", status_code=303)
