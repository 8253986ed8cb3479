"""UI page: the images of the current environment's hosts (issue 18), per host — tags, id, size, created, the
containers using each — and removing an unused one from a host.

Why grouped by host: a Docker image exists per engine (the same tag may be another image elsewhere), so the page
shows each host's own list, as its agent last reported it, with the images' total size (what they hold on its
disk). `?host=ID` narrows it to one host (the host page links there). Removal is for roles that manage hosts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.model.access import Resource
from corral.model.errors import CorralError
from corral.web.pages_volumes import settle
from corral.web.permissions import may_change
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()


def _by_host(hosts: list[dict[str, Any]], images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per host (hosts without a report too), in the hosts' order, with the images' total size."""
    groups: dict[str, dict[str, Any]] = {h["id"]: {"host": h, "images": [], "size": 0, "current": None} for h in hosts}
    for image in images:
        group = groups.get(image["host_id"])
        if group is None:  # a host created after the host list was read
            continue
        group["images"].append(image)
        group["size"] += int(image.get("size") or 0)
        group["current"] = bool(image.get("current"))
    return list(groups.values())


def _page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
    error = context.pop("error", "")
    host_ref = request.query_params.get("host") or context.pop("host_ref", "")
    if not session.environment_id:
        environments_of(session)
    groups: list[dict[str, Any]] = []
    if session.environment_id:
        client = session.client()
        try:
            hosts = client.list_hosts(session.environment_id)
            if host_ref:
                hosts = [h for h in hosts if host_ref in (h["id"], h["name"])]
            images = client.images.list(session.environment_id, host=host_ref or None)
            groups = _by_host(sorted(hosts, key=lambda h: (str(h["name"]), str(h["id"]))), images)
        except CorralError as exc:
            error = error or exc.message
    return render(
        request,
        session,
        "images.html",
        status,
        groups=groups,
        host_ref=host_ref,
        error=error,
        can_change=may_change(session, Resource.HOSTS),
        **context,
    )


@router.get("/images")
def images_page(request: Request, session: PageSession) -> HTMLResponse:
    return _page(request, session)


@router.post("/hosts/{host_id}/images/{image_id}/delete")
def remove_image(request: Request, host_id: str, image_id: str, session: PostSession) -> Response:
    back = request.query_params.get("host") or ""
    try:
        client = session.client()
        client.images.delete(host_id, image_id)
        environment = str(client.get_host(host_id)["environment_id"])
        settle(lambda: all(i["id"] != image_id for i in client.images.list(environment, host=host_id)))
    except CorralError as exc:
        status = exc.status if exc.status < 500 else 422
        return _page(request, session, status, error=exc.message, host_ref=back)
    return RedirectResponse(f"/ui/images?host={quote(back, safe='')}" if back else "/ui/images", status_code=303)
