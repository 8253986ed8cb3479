"""REST routes for private registry credentials: add, list, change, remove (per environment).

Why a module of its own: the password crosses this edge in one direction only. It is accepted in a request body
and handed to the store (which encrypts it); no response, event or log line built here ever carries it — every
view is made from `Registry`, which has no password field. A change triggers the orchestrator, which sends the
environment's agents their new credentials with the next `desired` message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.model.entities import Principal
from corral.model.registries import MAX_PASSWORD, MAX_USERNAME
from corral.server.security.auth import require_admin
from corral.store.registries import Registry, RegistryStore
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class RegistryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    server: str = Field(max_length=255)
    username: str = Field(max_length=MAX_USERNAME)
    password: str = Field(max_length=MAX_PASSWORD, repr=False)


class RegistryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    username: str = Field(max_length=MAX_USERNAME)
    password: str = Field(max_length=MAX_PASSWORD, repr=False)


def registry_view(registry: Registry) -> dict[str, Any]:
    return {
        "id": registry.id,
        "environment_id": registry.environment_id,
        "server": registry.server,
        "username": registry.username,
        "created_at": registry.created_at,
    }


def _registries(request: Request) -> RegistryStore:
    registries: RegistryStore = request.app.state.registries
    return registries


def _changed(request: Request, action: str, registry: Registry) -> dict[str, Any]:
    view = registry_view(registry)
    request.app.state.bus.publish("registry", action, view, registry.environment_id)
    request.app.state.orchestrator.trigger()  # the agents get the new credentials with their next desired set
    return view


@router.post("/environments/{ref}/registries", status_code=201)
def create_registry(request: Request, ref: str, body: RegistryCreate, _: Admin) -> dict[str, Any]:
    store: Store = request.app.state.store
    env = store.get_environment(ref)
    registry = _registries(request).add(env.id, body.server, body.username, body.password)
    return _changed(request, "created", registry)


@router.get("/environments/{ref}/registries")
def list_registries(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    store: Store = request.app.state.store
    env = store.get_environment(ref)
    return {"data": [registry_view(r) for r in _registries(request).list(env.id)]}


@router.get("/registries/{registry_id}")
def get_registry(request: Request, registry_id: str, _: Admin) -> dict[str, Any]:
    return registry_view(_registries(request).get(registry_id))


@router.put("/registries/{registry_id}")
def update_registry(request: Request, registry_id: str, body: RegistryUpdate, _: Admin) -> dict[str, Any]:
    registry = _registries(request).update(registry_id, username=body.username, password=body.password)
    return _changed(request, "updated", registry)


@router.delete("/registries/{registry_id}", status_code=204)
def delete_registry(request: Request, registry_id: str, _: Admin) -> Response:
    _changed(request, "removed", _registries(request).delete(registry_id))
    return Response(status_code=204)
