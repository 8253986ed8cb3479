"""UI page: the current environment's secrets — list (names only), create (name + value), remove.

Why the value field is a textarea posted once and never rendered back: the server never returns a value, and a
refused form shows the name and the error again but an empty value field (a secret is never echoed into HTML).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.model.errors import CorralError
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
FormText = Annotated[str, Form()]


def _page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
    secrets: list[dict[str, Any]] = []
    error = context.pop("error", "")
    if session.environment_id:
        try:
            secrets = session.client().secrets.list(session.environment_id)
        except CorralError as exc:
            error = error or exc.message
    return render(request, session, "secrets.html", status, secrets=secrets, error=error, **context)


@router.get("/secrets")
def secrets_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/secrets")
def create_secret(request: Request, session: PostSession, name: FormText = "", value: FormText = "") -> Response:
    try:
        session.client().secrets.create(session.environment_id or "default", name.strip(), value)
    except CorralError as exc:
        status = exc.status if exc.status < 500 else 422
        return _page(request, session, status, error=exc.message, name=name)
    return RedirectResponse("/ui/secrets", status_code=303)


@router.post("/secrets/{name}/delete")
def delete_secret(request: Request, name: str, session: PostSession) -> Response:
    try:
        session.client().secrets.delete(session.environment_id or "default", name)
    except CorralError as exc:
        return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message)
    return RedirectResponse("/ui/secrets", status_code=303)
