"""UI page: the events log, a table that grows as `/v1/events` reports changes in the current environment.

Why the page itself is nearly empty: the server keeps no event history; static/events.js appends each event that
corral.js receives on the live socket (newest on top, capped) and filters them by resource type in the browser.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.web.rendering import render
from corral.web.shared import PageSession

router = APIRouter()

MAX_ROWS = 500


@router.get("/events")
def events_page(request: Request, session: PageSession) -> HTMLResponse:
    return render(request, session, "events.html", max_rows=MAX_ROWS)
