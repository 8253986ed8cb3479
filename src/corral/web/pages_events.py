"""UI page: the events log, a table that grows as `/v1/events` reports changes in the current environment.

Why the page starts from the server's kept history (`GET /v1/events`, newest first) and then grows in the browser:
static/events.js appends each event that corral.js receives on the live socket (newest on top, capped) and filters
them by resource type, so the page shows what happened before it was opened as well as what happens now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.model.errors import CorralError
from corral.web.pages_hosts import _current_environment
from corral.web.rendering import render
from corral.web.shared import PageSession

router = APIRouter()

MAX_ROWS = 500
HISTORY_ROWS = 200


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@router.get("/events")
def events_page(request: Request, session: PageSession) -> HTMLResponse:
    environment_id = _current_environment(session)
    try:
        history = session.client().events(environment_id or None, limit=HISTORY_ROWS)["data"]
    except CorralError:
        history = []  # the page still follows the live stream
    for event in history:
        event["clock"] = _clock(event["time"])
    return render(request, session, "events.html", max_rows=MAX_ROWS, history=history)
