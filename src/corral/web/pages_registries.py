"""UI page: the current environment's private registry credentials — list, add, change, remove.

Why the password field is always empty: the API never returns a registry's password (only server and user name),
and a refused form shows the server and user name again but never the password it was given.
"""

from __future__ import annotations

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


def _environment(session: Session) -> str:
    if not session.environment_id:
        environments_of(session)
    return session.environment_id


def _page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
    registries: list[dict[str, Any]] = []
    error = context.pop("error", "")
    environment = _environment(session)
    if environment:
        try:
            registries = session.client().list_registries(environment)
        except CorralError as exc:
            error = error or exc.message
    context.setdefault("form", {"server": "", "username": ""})
    return render(
        request,
        session,
        "registries.html",
        status,
        registries=sorted(registries, key=lambda r: str(r["server"])),
        error=error,
        can_change=may_change(session, Resource.REGISTRIES),
        **context,
    )


def _refused(request: Request, session: Session, exc: CorralError, **context: Any) -> HTMLResponse:
    return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message, **context)


@router.get("/registries")
def registries_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/registries")
def add_registry(
    request: Request, session: PostSession, server: FormText = "", username: FormText = "", password: FormText = ""
) -> Response:
    try:
        session.client().add_registry(_environment(session) or "default", server.strip(), username.strip(), password)
    except CorralError as exc:
        return _refused(request, session, exc, form={"server": server, "username": username})
    return RedirectResponse("/ui/registries", status_code=303)


@router.post("/registries/{registry_id}/credentials")
def change_credentials(
    request: Request, registry_id: str, session: PostSession, username: FormText = "", password: FormText = ""
) -> Response:
    try:
        session.client().update_registry(registry_id, username.strip(), password)
    except CorralError as exc:
        return _refused(request, session, exc, editing=registry_id)
    return RedirectResponse("/ui/registries", status_code=303)


@router.post("/registries/{registry_id}/delete")
def remove_registry(request: Request, registry_id: str, session: PostSession) -> Response:
    try:
        session.client().delete_registry(registry_id)
    except CorralError as exc:
        return _refused(request, session, exc)
    return RedirectResponse("/ui/registries", status_code=303)
