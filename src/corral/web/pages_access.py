"""UI page: the audit log of the current environment (owners) or of the whole server (admins), with filters.

Why through the API: who may read which entries is decided by the API's policy table (server/access_rules.py),
as for every other page; this page only renders what the session's key may see, a page at a time.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from corral.client.access import AccessClient
from corral.model.admission import parse_lifetime
from corral.model.errors import CorralError
from corral.web.rendering import render
from corral.web.shared import PageSession

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
