"""REST routes for volumes (issue 17 item 4): list (paged, filtered by environment, stack, host, state), inspect,
create an environment-scoped volume on some or every host, remove one (409 naming its containers while in use).

Why thin: the views and states come from model/volumes.py over the hosts' reports, the changes go through the
agents (server/hub/volumes.py); a route only checks its input and shapes the answer. Rights: volumes are storage of
user workloads, so they follow containers' rules (policy table: read-only lists, restricted and above change).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.model.entities import Principal
from corral.model.errors import InvalidInput
from corral.model.volumes import (
    DRIVER_NAME,
    STATES,
    Volume,
    validate_driver_options,
    validate_volume_name,
)
from corral.server.hub.volumes import VolumeService
from corral.server.security.auth import require_admin
from corral.server.views.paging import Paging, page, paged_body
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class VolumeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str | None = Field(default=None, max_length=128)
    name: str = Field(max_length=255)
    driver: str = Field(default="local", max_length=128)
    driver_opts: dict[str, Any] = Field(default_factory=dict, max_length=64)
    hosts: list[Annotated[str, Field(max_length=128)]] | None = Field(default=None, max_length=1000)


def _volumes(request: Request) -> VolumeService:
    service: VolumeService = request.app.state.volumes
    return service


def _environment_id(request: Request, ref: str | None) -> str:
    store: Store = request.app.state.store
    return store.get_environment(ref or "default").id


def volume_view(volume: Volume, environment_id: str) -> dict[str, Any]:
    return {"environment_id": environment_id, **volume.view()}


@router.get("/volumes")
def list_volumes(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query(max_length=128)] = None,
    stack: Annotated[str | None, Query(max_length=128)] = None,
    host: Annotated[str | None, Query(max_length=128, description="A host's id or name.")] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, not {state!r}", field="state")
    store: Store = request.app.state.store
    environments = [store.get_environment(environment)] if environment else store.list_environments()
    chosen: list[tuple[str, Volume]] = []
    for env in environments:
        for volume in _volumes(request).of_environment(env.id):
            if stack is not None and volume.stack != stack:
                continue
            if host is not None and not any(host in (h.host_id, h.host_name) for h in volume.holdings):
                continue
            if state is not None and volume.state != state:
                continue
            chosen.append((env.id, volume))
    found, token = page("volumes", chosen, lambda pair: (pair[0], pair[1].name), paging)
    return paged_body([volume_view(v, env_id) for env_id, v in found], token, paging)


@router.get("/volumes/{name}")
def get_volume(
    request: Request, name: str, _: Admin, environment: Annotated[str | None, Query(max_length=128)] = None
) -> dict[str, Any]:
    env_id = _environment_id(request, environment)
    return volume_view(_volumes(request).get(env_id, validate_volume_name(name)), env_id)


@router.post("/volumes", status_code=201)
async def create_volume(request: Request, body: VolumeCreate, _: Admin) -> dict[str, Any]:
    name = validate_volume_name(body.name)
    if not DRIVER_NAME.fullmatch(body.driver):
        raise InvalidInput(f"driver {body.driver!r} is not a volume driver name", field="driver")
    options = validate_driver_options(body.driver_opts)
    env_id = _environment_id(request, body.environment)
    outcome = await _volumes(request).create(
        env_id, name, driver=body.driver, driver_opts=options, host_refs=body.hosts
    )
    return {
        "environment_id": env_id,
        "name": name,
        "driver": body.driver,
        "scope": "environment",
        "hosts": [{"name": host, "error": error} for host, error in sorted(outcome.items())],
    }


@router.delete("/volumes/{name}", status_code=204)
async def delete_volume(
    request: Request, name: str, _: Admin, environment: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    env_id = _environment_id(request, environment)
    await _volumes(request).remove(env_id, validate_volume_name(name))
    return Response(status_code=204)
