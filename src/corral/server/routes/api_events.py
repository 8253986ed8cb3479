"""REST route for the event history: `GET /v1/events` (the websocket on the same path streams new ones).

Why a module of its own: the history is read-only and paged by a cursor (`before` = the oldest `event_id` of the
previous page), so a client can start with what happened and then follow the live stream from the answer's `version`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from corral.model.entities import Principal
from corral.model.errors import InvalidInput
from corral.server.security.auth import require_admin
from corral.store.events import PAGE_LIMIT, EventStore
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


@router.get("/events")
async def list_events(
    request: Request,
    _: Admin,
    environment: Annotated[str | None, Query()] = None,
    since: Annotated[float | None, Query(description="Only events at or after this UNIX time.")] = None,
    before: Annotated[int | None, Query(ge=1, description="Only events older than this event_id (paging).")] = None,
    resource_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
    token: Annotated[str | None, Query(alias="continue", max_length=32, description="`continue` of a page.")] = None,
) -> dict[str, Any]:
    """Kept events, newest first, and `next`: the `before` of the next (older) page, null on the last page; the same
    as `continue`, as every other collection pages (an event id: new events never shift a page)."""
    if token is not None:
        if not token.isdigit() or int(token) < 1:
            raise InvalidInput("continue: not a token this server gave out", field="continue")
        before = int(token) if before is None else min(before, int(token))
    store: Store = request.app.state.store
    events: EventStore = request.app.state.event_store
    version = request.app.state.bus.current
    await request.app.state.event_history.flush()  # what was published before this call is in the answer
    env_id = (await run_in_threadpool(store.get_environment, environment)).id if environment else None
    page = await run_in_threadpool(
        lambda: events.page(env_id, since=since, before=before, resource_type=resource_type, limit=limit)
    )
    more = len(page) == limit and page[-1]["event_id"] > 1
    after = page[-1]["event_id"] if more else None
    # `version`: the newest event published before this answer; `/v1/events?since_version=` goes on from it
    return {"data": page, "next": after, "continue": str(after) if after is not None else None, "version": version}
