"""UI pages: hosts of the current environment (minimal; being extended)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.web.rendering import render
from corral.web.shared import PageSession

router = APIRouter()


@router.get("/hosts")
def hosts_page(request: Request, session: PageSession) -> HTMLResponse:
    response = render(request, session, "hosts.html", hosts=[])
    hosts = session.client().list_hosts(session.environment_id) if session.environment_id else []
    return render(request, session, "hosts.html", hosts=hosts) if hosts else response
