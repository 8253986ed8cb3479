"""REST routes for the images the hosts' engines hold (issue 18): list them per host (paged, filtered by
environment, host, in use) and remove an unused one from a host (409 naming its containers while in use).

Why from the hub's memory: the agents list their images (`image_list`, model/image_inventory.py) on connect and
whenever images or containers change; the list is for people, nothing schedules on it, so it is not stored (a
restarted server shows each host's images again once its agent is back). Rights: images belong to hosts (the
policy table: read-only lists them, members and owners remove them, as they manage hosts).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from corral.model import protocol
from corral.model.entities import Host, HostState, Principal
from corral.model.errors import Conflict, InvalidInput, NotFound, Unavailable
from corral.model.image_inventory import HostImage, find_image
from corral.server.hub.hub import AgentHub
from corral.server.security.auth import require_admin
from corral.server.views.paging import Paging, page, paged_body
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
REQUEST_SECONDS = 60.0  # removing a large image takes a while; an agent older than `image` never answers


def _hub(request: Request) -> AgentHub:
    hub: AgentHub = request.app.state.hub
    return hub


def _current(hub: AgentHub, host: Host) -> bool:
    """Whether the host's list is current: its agent is connected and it is not gone."""
    return hub.is_connected(host.id) and host.state is not HostState.DISCONNECTED


def _row(hub: AgentHub, item: HostImage, host: Host) -> dict[str, Any]:
    return {**item.view(), "host_state": host.state.value, "current": _current(hub, host)}


@router.get("/images")
def list_images(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query(max_length=128)] = None,
    host: Annotated[str | None, Query(max_length=128, description="A host's id or name.")] = None,
    in_use: Annotated[bool | None, Query(description="Only images containers use (true) or do not (false).")] = None,
) -> dict[str, Any]:
    store: Store = request.app.state.store
    hub = _hub(request)
    environments = [store.get_environment(environment)] if environment else store.list_environments()
    chosen: list[tuple[HostImage, Host]] = []
    for env in environments:
        hosts = store.list_hosts(env.id, container_counts=False)
        if host is not None:
            hosts = [h for h in hosts if host in (h.id, h.name)]
            if not hosts and environment:
                raise NotFound(f"no host {host!r} in environment {env.name}", field="host")
        for h in hosts:
            for image in hub.image_lists.get(h.id, ()):
                if in_use is None or image.in_use == in_use:
                    chosen.append((HostImage(env.id, h.id, h.name, image), h))
    found, token = page("images", chosen, lambda pair: pair[0].sort_key, paging)
    return paged_body([_row(hub, item, h) for item, h in found], token, paging)


@router.delete("/hosts/{host_id}/images/{image:path}", status_code=204)
async def delete_image(request: Request, host_id: str, image: str, _: Admin) -> Response:
    """Remove an image (its id, an id prefix of 12+ hex digits, or a tag, which may hold `/`) from the host's
    engine, never forced."""
    if not image or len(image) > protocol.MAX_REFERENCE_LENGTH:
        raise InvalidInput("image must be an image id or tag", field="image")
    store: Store = request.app.state.store
    hub = _hub(request)
    host = await run_in_threadpool(store.get_host, host_id)
    found = find_image(hub.image_lists.get(host.id, ()), image)
    if found is None:
        raise NotFound(f"host {host.name} lists no image {image!r} (or several match: give the id)", field="image")
    if found.containers:
        raise Conflict(
            f"image {found.short_id} is in use on {host.name} by {', '.join(found.containers)}: remove those "
            "containers first",
            field="image",
        )
    if not _current(hub, host):
        raise Conflict(f"host {host.name} is {host.state.value} and its agent not connected", field="host_id")
    error = await _ask(hub, host.id, {"action": "remove", "id": found.id})
    if error:
        raise Conflict(f"image {found.short_id} not removed from {host.name}: {error}", field="image")
    return Response(status_code=204)


async def _ask(hub: AgentHub, host_id: str, request: dict[str, object]) -> str:
    """Send one `image` request to a host's agent; "" when done, else why not."""
    try:
        stream = await hub.relay.open_stream(host_id, protocol.IMAGE, request)
    except Unavailable as exc:
        return exc.message
    try:
        async with asyncio.timeout(REQUEST_SECONDS):
            while True:
                message = await hub.relay.next_message(stream)
                if message.type == protocol.END:
                    error = message.data.get("error")
                    return str(error) if error else ""
    except TimeoutError:
        return f"the agent did not answer within {REQUEST_SECONDS:.0f} s (an agent older than image removal?)"
    finally:
        await hub.relay.close_stream(stream)
