"""UI fragment: a host's CPU and memory use, summed over its running Corral containers (web/usage_view.py says why
not more), loaded by the host page after it shows and refreshed while it stays open.

Why a fragment of its own: each figure is a `docker stats` reading on the host (about a second each, asked in
parallel); the rest of the host page must not wait for them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.client import CorralClient
from corral.model.errors import CorralError
from corral.web.pages_hosts import CORRAL_CONTAINER_LABEL
from corral.web.rendering import render
from corral.web.shared import PageSession
from corral.web.usage_view import usage_summary

router = APIRouter()
MAX_PARALLEL = 8


def _sample(client: CorralClient, container_id: str) -> dict[str, Any] | None:
    try:
        return next(iter(client.stacks.stats(container_id, stream=False)), None)
    except CorralError:
        return None  # stopped meanwhile, or the host did not answer: counted as missing


@router.get("/hosts/{host_id}/usage")
def host_usage(request: Request, host_id: str, session: PageSession) -> HTMLResponse:
    client = session.client()
    host = client.get_host(host_id)
    ids = [
        c["labels"][CORRAL_CONTAINER_LABEL]
        for c in client.list_host_containers(host_id)
        if c.get("state") == "running" and c.get("labels", {}).get(CORRAL_CONTAINER_LABEL)
    ]
    samples: list[dict[str, Any]] = []
    if ids and host.get("state") == "active":
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(ids))) as pool:
            samples = [s for s in pool.map(lambda i: _sample(client, i), ids) if s is not None]
    usage = usage_summary(host.get("facts") or {}, samples, len(ids))
    try:  # the images' sizes, as the agent listed them: the disk figure the agents do report (issue 18)
        images = client.images.list(str(host["environment_id"]), host=host_id)
        usage["images"], usage["images_bytes"] = len(images), sum(int(i.get("size") or 0) for i in images)
    except CorralError:
        usage["images"] = None
    return render(request, session, "_host_usage.html", host=host, usage=usage)
