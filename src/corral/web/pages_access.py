"""UI pages: the audit log of the current environment (owners) or of the whole server (admins), with filters;
access: the current environment's members and roles (owners change them) and the users (admins).

Why through the API: who may read or change what is decided by the API's policy table (server/security/access_rules.py),
as for every other page; these pages render what the session's key may see and show the API's refusals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.client.access import AccessClient
from corral.model.admission import parse_lifetime
from corral.model.errors import CorralError
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
PAGE_SIZE = 100


@router.get("/audit")
def audit_page(
    request: Request,
    session: PageSession,
    user: Annotated[str, Query(max_length=255)] = "",
    since: Annotated[str, Query(max_length=16)] = "",
    before: Annotated[int | None, Query()] = None,
    everywhere: Annotated[bool, Query(alias="all")] = False,
) -> HTMLResponse:
    error = ""
    page: dict[str, Any] = {"data": [], "next": None}
    try:
        since_at = time.time() - (parse_lifetime(since, field="since") or 0) if since else None
        page = AccessClient(session.client()).audit(
            environment=None if everywhere else session.environment_id or None,
            user=user or None,
            since=since_at,
            before=before,
            limit=PAGE_SIZE,
        )
    except CorralError as exc:
        error = exc.message
    return render(
        request,
        session,
        "audit.html",
        entries=page["data"],
        next_before=page["next"],
        user=user,
        since=since,
        everywhere=everywhere,
        error=error,
        when=lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)),
    )


# -- members and users ------------------------------------------------------------------------------------------

ROLES = ("owner", "member", "restricted", "read-only")
FormText = Annotated[str, Form()]


@router.get("/access")
def access_page(request: Request, session: PageSession) -> HTMLResponse:
    return _access_page(request, session)


def _access_page(
    request: Request,
    session: Session,
    status_code: int = 200,
    error: str = "",
) -> HTMLResponse:
    access = AccessClient(session.client())
    me = access.me()
    members: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    try:
        members = access.members(session.environment_id) if session.environment_id else []
        users = access.users() if me["admin"] else []
    except CorralError as exc:
        error = error or exc.message
    return render(
        request,
        session,
        "access.html",
        status_code,
        me=me,
        members=members,
        users=users,
        roles=ROLES,
        error=error,
    )


def _after(request: Request, session: Session, action: Callable[[AccessClient], object]) -> Response:
    try:
        action(AccessClient(session.client()))
    except CorralError as exc:
        return _access_page(request, session, exc.status if exc.status < 500 else 422, exc.message)
    return RedirectResponse("/ui/access", status_code=303)


@router.post("/access/members")
def set_member(
    request: Request, session: PostSession, name: FormText = "", role: FormText = "", kind: FormText = "user"
) -> Response:
    group = kind == "group"
    return _after(
        request,
        session,
        lambda a: a.set_member(
            session.environment_id, role, user=None if group else name.strip(), group=name.strip() if group else None
        ),
    )


@router.post("/access/members/{kind}/{subject}/remove")
def remove_member(request: Request, kind: str, subject: str, session: PostSession) -> Response:
    return _after(request, session, lambda a: a.remove_member(session.environment_id, kind, subject))


@router.post("/access/users")
def create_user(
    request: Request, session: PostSession, username: FormText = "", password: FormText = "", admin: FormText = ""
) -> Response:
    return _after(request, session, lambda a: a.create_user(username.strip(), password, admin=bool(admin)))


@router.post("/access/users/{username}/{action}")
def user_action(request: Request, username: str, action: str, session: PostSession) -> Response:
    if action == "remove":
        return _after(request, session, lambda a: a.delete_user(username))
    if action not in ("disable", "enable"):
        return _access_page(request, session, 404, f"unknown action {action!r}")
    return _after(request, session, lambda a: a.update_user(username, disabled=action == "disable"))
