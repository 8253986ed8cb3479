"""`GET /v1/<collection>?watch=true[&since_version=N]`: a collection's changes as NDJSON lines, resumable.

Why from two renders and not from a log of changes: a watch must show an item exactly as the list renders it (a
container's state joins its slot, its host and what the agent reports), so each change is the difference between
the list rendered at the version the client has and at the newest one (model/watch.py `changes`): ADDED, MODIFIED
or DELETED with the rendered item, each line carrying the version it was rendered at. The in-memory state keeps the
snapshots of its recent versions (state/cluster.py), so `since_version` (the `X-Corral-Version` a list answered
with, or the last line's) resumes without a re-list; a version it no longer keeps answers 410 (resync-required), as
the Kubernetes apiserver does. Without `since_version` the watch starts with every current item as ADDED.

Why wake on the state's listener and render at most once per wake: a burst of commits becomes one render and one
batch of lines. A `bookmark` line ends the first batch (the client has caught up), and comes every `IDLE_SECONDS`
while nothing changes: it keeps idle connections alive, and the render it follows shows time-driven changes (a
container that stays `activating` too long becomes `error`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from corral.model.errors import Gone, InvalidInput, Unavailable
from corral.model.watch import BOOKMARK, changes
from corral.server.views.paging import dumps
from corral.state.cluster import Change, ClusterState
from corral.state.snapshot import ClusterSnapshot

IDLE_SECONDS = 10.0
VERSION_HEADER = "X-Corral-Version"
Render = Callable[[ClusterSnapshot], dict[str, Any]]  # snapshot -> item id -> item as the list renders it


def parse_version(value: str | None, name: str = "since_version") -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name}: a version (a whole number >= 0), not {value[:20]!r}", field=name)
    return int(value)


def versioned(response: Response, version: int) -> Response:
    """A list answer with the state version it was rendered at (where a watch can resume); none for a list read
    from the database (before the state loaded, after a failed refresh): it has no version to resume from."""
    if version:
        response.headers[VERSION_HEADER] = str(version)
    return response


def watch_response(request: Request, since_version: str | None, render: Render) -> StreamingResponse:
    cluster: ClusterState = request.app.state.cluster
    since = parse_version(since_version)
    if not cluster.fresh:
        raise Unavailable("the server is loading its state; watch again in a moment")
    base: ClusterSnapshot | None = None
    if since is not None:
        current = cluster.version
        if since > current:
            raise Gone(
                f"since_version {since} is newer than this server's {current}: list again", field="since_version"
            )
        base = cluster.snapshot_at(since)
        if base is None:
            raise Gone(
                f"since_version {since} is older than the versions this server keeps: list again", field="since_version"
            )
    stream = _stream(cluster, base, render)
    return StreamingResponse(stream, media_type="application/x-ndjson", headers={VERSION_HEADER: str(cluster.version)})


async def _stream(cluster: ClusterState, base: ClusterSnapshot | None, render: Render) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def changed(_: Change) -> None:  # in the writer's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
            loop.call_soon_threadsafe(wake.set)

    cluster.listeners.append(changed)  # before the first render: a change after it wakes us
    try:
        seen = {} if base is None else await run_in_threadpool(render, base)
        first, quiet = True, False
        while True:
            wake.clear()
            snapshot = cluster.snapshot()
            # render, compare and encode off the loop: with thousands of items each is tens of milliseconds of CPU
            items, lines = await run_in_threadpool(_render_changes, render, snapshot, seen)
            seen = items
            if first or (quiet and not lines):  # the first batch is complete; or still alive, nothing changed
                lines.append(dumps({"type": BOOKMARK, "version": snapshot.version}) + b"\n")
            first = False
            if lines:
                yield b"".join(lines)
            try:
                async with asyncio.timeout(IDLE_SECONDS):  # (not `wait_for`: in 3.11 it may swallow a cancel)
                    await wake.wait()
                quiet = False
            except TimeoutError:
                quiet = True
    finally:
        with contextlib.suppress(ValueError):
            cluster.listeners.remove(changed)


def _render_changes(
    render: Render, snapshot: ClusterSnapshot, seen: dict[str, Any]
) -> tuple[dict[str, Any], list[bytes]]:
    """The items at `snapshot` and the encoded lines of what changed since `seen`."""
    items = render(snapshot)
    version = snapshot.version
    lines = [dumps({"type": kind, "version": version, "object": item}) + b"\n" for kind, item in changes(seen, items)]
    return items, lines
