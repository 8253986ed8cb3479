"""UI page: the current environment's certificates — list (subject, SANs, expiry, warning), upload (name + PEM
certificate + PEM key), remove (issue 19 item 3).

Why the key field is posted once and never rendered back: the server never returns a key, and a refused form shows
the name, the certificate and the error again but an empty key field (a key is never echoed into HTML).
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
    certificates: list[dict[str, Any]] = []
    error = context.pop("error", "")
    if session.environment_id:
        try:
            certificates = session.client().certificates.list(session.environment_id)
        except CorralError as exc:
            error = error or exc.message
    return render(request, session, "certificates.html", status, certificates=certificates, error=error, **context)


@router.get("/certificates")
def certificates_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/certificates")
def create_certificate(
    request: Request, session: PostSession, name: FormText = "", cert: FormText = "", key: FormText = ""
) -> Response:
    try:
        session.client().certificates.create(session.environment_id or "default", name.strip(), cert, key)
    except CorralError as exc:
        status = exc.status if exc.status < 500 else 422
        return _page(request, session, status, error=exc.message, name=name, cert=cert)
    return RedirectResponse("/ui/certificates", status_code=303)


@router.post("/certificates/{name}/delete")
def delete_certificate(request: Request, name: str, session: PostSession) -> Response:
    try:
        session.client().certificates.delete(session.environment_id or "default", name)
    except CorralError as exc:
        return _page(request, session, exc.status if exc.status < 500 else 422, error=exc.message)
    return RedirectResponse("/ui/certificates", status_code=303)
