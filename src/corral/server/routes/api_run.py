"""`POST /v1/containers` (`corral run`) and `DELETE /v1/containers/{id}`: standalone containers (issue 18).

Why this shape: a run is checked field by field (model/standalone.py, 4xx naming the field, nothing stored), then
the host is chosen once, by the pass's own scheduler over the in-memory snapshot (orchestrator/preview.py, as `up
--plan` does: ports, architectures, reservations, host states) or taken from the request, and the container is
stored pinned to it: the orchestrator places it there and never anywhere else, as Docker and Rancher 1.6 keep a
container on its host. A run no host can take is refused (409 with the scheduler's reason) as `docker run` fails,
rather than stored to wait. Stop and start are the container routes every container has (api_stacks.py).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from corral.model.entities import Environment, Principal
from corral.model.errors import Conflict, InvalidInput, NotFound
from corral.model.stack import ServiceSpec, StackSpec
from corral.model.standalone import STANDALONE_STACK, RunRequest, service_spec, validate_run
from corral.orchestrator.preview import preview_stack
from corral.server.security.auth import require_admin
from corral.server.services.stacks import stack_service_of, store_of
from corral.server.shared.bodies import Strict
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.standalone_views import standalone_of, standalone_view
from corral.store.stacks import StackStore
from corral.store.standalone import StandaloneStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class RunBody(Strict):
    """Types are checked by model/standalone.py, so that every error names its field the same way."""

    environment: str = "default"
    name: Any = None
    image: Any = None
    command: Any = None
    env: Any = None
    ports: Any = None
    labels: Any = None
    restart: Any = None
    host: Any = None


def _stacks(request: Request) -> StackStore:
    stacks: StackStore = request.app.state.stacks
    return stacks


def default_name(image: object) -> str:
    """`busybox-3f9a1c` from `corral/busybox:latest` (Docker makes up a name too when none is given)."""
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0] if isinstance(image, str) else ""
    base = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:48].strip("-") or "container"
    return f"{base}-{secrets.token_hex(3)}"


def _choose_host(request: Request, env: Environment, run: RunRequest, existing: list[ServiceSpec]) -> str:
    """The host the container is pinned to: the one asked for, or the scheduler's choice; Conflict with the
    scheduler's reason when it cannot go there (or anywhere)."""
    pinned = None
    if run.host:
        try:
            pinned = store_of(request).find_host(env.id, run.host).id
        except NotFound:
            raise InvalidInput(f"host {run.host!r}: no such host in environment {env.name}", field="host") from None
    spec = service_spec(run, pinned) if pinned else dataclasses.replace(service_spec(run, ""), pinned_host=None)
    world = stack_service_of(request).world(env)
    preview = preview_stack(world, StackSpec(STANDALONE_STACK, (*existing, spec)))
    for container in preview.containers:
        if container.service == run.name and container.action == "create":
            return container.host_id
    reasons = [u.reason.removeprefix("#1: ") for u in preview.unplaced if u.service == run.name]
    why = "; ".join(reasons) or "no host can take it"
    where = f"host {run.host}" if run.host else "no host"
    raise Conflict(f"{where} can run {run.name} now: {why}", field="host")


@router.post("/containers", status_code=201)
def run_container(request: Request, body: RunBody, _: Admin) -> dict[str, Any]:
    """Run a standalone container (`corral run`): created on one host, outside any stack, never moved."""
    store = store_of(request)
    env = store.get_environment(body.environment)
    raw = body.model_dump()
    run = validate_run(raw, default_name=default_name(raw.get("image")))
    standalone = StandaloneStore(_stacks(request))
    existing = [s.spec for s in standalone.list(env.id)]
    if any(s.name == run.name for s in existing):
        raise Conflict(f"a standalone container named {run.name!r} already exists in this environment", field="name")
    state = EnvironmentState.load(store, _stacks(request), env.id)
    if any(r.slot.name == run.name for r in state.slots):  # the engine's names: a stack's container has it
        raise Conflict(f"a container of a stack is named {run.name!r} already: choose another name", field="name")
    host_id = _choose_host(request, env, run, existing)
    spec = service_spec(run, host_id)
    hidden = next((s for s in _stacks(request).list_stacks(env.id) if s.name == STANDALONE_STACK), None)
    stack_service_of(request).check_quotas(
        env, StackSpec(STANDALONE_STACK, (*existing, spec)), hidden.id if hidden else None
    )
    service = standalone.add(env.id, spec)
    request.app.state.orchestrator.trigger()
    request.app.state.bus.publish("container", "created", {"id": service.id, "name": service.name}, env.id)
    return standalone_view(service, EnvironmentState.load(store, _stacks(request), env.id))


@router.delete("/containers/{container_id}", status_code=204)
def remove_container(request: Request, container_id: str, _: Admin) -> Response:
    """Remove a standalone container (its id or its slot's); a service's container is its service's to remove."""
    stacks = _stacks(request)
    service = standalone_of(stacks, container_id)
    if service is None:
        record = stacks.get_slot(container_id)  # NotFound when it is no container at all
        raise Conflict(
            f"container {record.slot.name} belongs to service {record.slot.service} of stack {record.slot.stack}: "
            "scale the service down or remove the stack instead",
            field="container",
        )
    StandaloneStore(stacks).remove(service.id)
    request.app.state.orchestrator.trigger()
    request.app.state.bus.publish(
        "container", "removed", {"id": service.id, "name": service.name}, service.environment_id
    )
    return Response(status_code=204)
