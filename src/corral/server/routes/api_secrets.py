"""REST routes for environment secrets: create, list, remove (issue 17 item 3).

Why a module of its own: a secret's value crosses this edge in one direction only. It is accepted in a request
body and handed to the store (which seals it); every response and event is built from `Secret`, which has no
value, and the body model hides its input from validation errors. A change wakes the orchestrator: the hosts whose
containers name a secret get its value with their next `desired` set (server/control/orchestration.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.model.entities import Principal
from corral.model.files import MAX_SECRET_BYTES
from corral.server.security.auth import require_admin
from corral.store.repository import Store
from corral.store.secrets import Secret, SecretStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class SecretCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(max_length=64)
    value: str = Field(max_length=MAX_SECRET_BYTES, repr=False)


def secret_view(secret: Secret) -> dict[str, Any]:
    return {
        "id": secret.id,
        "environment_id": secret.environment_id,
        "name": secret.name,
        "stack": secret.stack,
        "created_at": secret.created_at,
        "updated_at": secret.updated_at,
    }


def secrets_of(request: Request) -> SecretStore:
    secrets: SecretStore = request.app.state.secrets
    return secrets


def _changed(request: Request, action: str, secret: Secret) -> dict[str, Any]:
    view = secret_view(secret)
    request.app.state.bus.publish("secret", action, view, secret.environment_id)
    request.app.state.orchestrator.trigger()
    return view


@router.post("/environments/{ref}/secrets", status_code=201)
def create_secret(request: Request, ref: str, body: SecretCreate, _: Admin) -> dict[str, Any]:
    store: Store = request.app.state.store
    env = store.get_environment(ref)
    return _changed(request, "created", secrets_of(request).create(env.id, body.name, body.value))


@router.get("/environments/{ref}/secrets")
def list_secrets(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    store: Store = request.app.state.store
    env = store.get_environment(ref)
    return {"data": [secret_view(s) for s in secrets_of(request).list(env.id)]}


@router.delete("/environments/{ref}/secrets/{name}", status_code=204)
def delete_secret(request: Request, ref: str, name: str, _: Admin) -> Response:
    store: Store = request.app.state.store
    env = store.get_environment(ref)
    _changed(request, "removed", secrets_of(request).delete(env.id, name))
    return Response(status_code=204)
