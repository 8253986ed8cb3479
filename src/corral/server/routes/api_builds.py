"""A stack's builds and their logs: the kept history (state, host, digest, times) and each build's log by offset,
or followed as plain text while it runs (the UI's stack page reads it as it reads a container's log).

Why apart from the stack's view: the view carries the current builds' last lines for `corral up` to follow; these
routes serve every kept build (the last ones of each service, server/hub/builds.py) and all of a log that may be long,
in pages. The log route is a `logs` right, as a container's log is (a build prints what its steps print).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from corral.model.build_log import cut_marker
from corral.model.entities import Principal
from corral.model.errors import NotFound
from corral.server.hub.builds import Build, BuildCoordinator
from corral.server.security.auth import require_admin

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
MAX_PAGE_LINES = 5000
FOLLOW_POLL_SECONDS = 0.25


def _coordinator(request: Request, stack_id: str) -> BuildCoordinator:
    request.app.state.stacks.get_stack(stack_id)  # NotFound (404) for a stack that does not exist
    found: BuildCoordinator | None = getattr(request.app.state, "builds", None)
    if found is None:
        raise NotFound("this server does not build images", field="build")
    return found


@router.get("/stacks/{stack_id}/builds")
def list_builds(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    """The stack's kept builds, the newest first (no log: `/builds/{id}/log` has it)."""
    builds = _coordinator(request, stack_id).history_of(stack_id)
    return {"data": [b.summary() for b in builds]}


@router.get("/stacks/{stack_id}/builds/{build_id}/log", response_model=None)
async def build_log(
    request: Request,
    stack_id: str,
    build_id: str,
    _: Admin,
    offset: Annotated[int, Query(ge=0, description="The first line wanted (lines are counted from 0).")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LINES)] = 1000,
    follow: Annotated[
        bool, Query(description="Plain text from `offset` on, as it comes, until the build ends.")
    ] = False,
) -> JSONResponse | StreamingResponse:
    """A page of the build's log as JSON: `lines` from `offset` (the first kept line when earlier ones were cut:
    `cut` says how many), `next_offset` for the next page, `done` once the build ended and every line was read.
    With `follow`, the log as plain text from `offset` to the end of the build."""
    build = _coordinator(request, stack_id).get(stack_id, build_id)
    if follow:
        return StreamingResponse(
            _follow(build, offset), media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"}
        )
    start, lines = build.log.after(offset, limit)
    next_offset = start + len(lines)
    return JSONResponse(
        {
            **build.summary(),
            "offset": start,
            "log": lines,
            "next_offset": next_offset,
            "total": build.log.total,
            "done": build.done and next_offset >= build.log.total,
        },
        headers={"Cache-Control": "no-store"},
    )


async def _follow(build: Build, offset: int) -> AsyncIterator[bytes]:
    sent = offset
    while True:
        done = build.done  # read before the lines: the last lines of a build that just ended are still sent
        start, lines = build.log.after(sent)
        if start > sent:
            yield f"{cut_marker(start)}\n".encode()
        if lines:
            yield "".join(f"{line}\n" for line in lines).encode()
        sent = start + len(lines)
        if done and sent >= build.log.total:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
