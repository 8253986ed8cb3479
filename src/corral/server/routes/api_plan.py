"""`POST /v1/stacks/plan`: what `PUT /v1/stacks` (`corral up`) would do with these files, without doing it.

Why a route of its own: the body is the `up` body and it runs the same checks in the same order (compose errors,
the environment's container policy, container credentials, builds, quotas, secrets, an upgrade in progress), so a
bad file gives the same 4xx; then, instead of storing, the pure preview (orchestrator/preview.py) runs the pass's
reconciler over the in-memory snapshot with the proposed services swapped in. Nothing is written, no event is
published, the orchestrator is not woken.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from corral.model.entities import Principal
from corral.model.errors import Conflict
from corral.model.policy import enforce
from corral.model.service_state import ServiceState
from corral.model.stack import StackSpec
from corral.orchestrator.preview import World, preview_stack
from corral.server.security.auth import require_admin
from corral.server.security.service_accounts import check_service_accounts
from corral.server.services.stack_builds import previous_records
from corral.server.services.stack_requests import StackFiles
from corral.server.services.stack_secrets import check_stack_secrets
from corral.server.services.stacks import parse_stack_files, stack_service_of, store_of
from corral.store.stacks import StackStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


@router.post("/stacks/plan")
def plan_stack(request: Request, body: StackFiles, _: Admin) -> dict[str, Any]:
    """The preview of `corral up` with this body: services created, changed (the fields, old -> new) or removed;
    containers created, recreated or removed, each with its index and host; indexes that cannot be placed, why."""
    service = stack_service_of(request)
    env = store_of(request).get_environment(body.environment)
    spec, files = parse_stack_files(body)
    spec = enforce(spec, service.environment_policy(env), env.name)
    check_service_accounts(spec)
    stacks: StackStore = request.app.state.stacks
    existing = next((s for s in stacks.list_stacks(env.id) if s.name == spec.name), None)
    previous = previous_records(stacks.stack_files(existing.id)) if existing is not None else {}
    spec, _records = service.with_builds(body, spec, files, previous, store_contexts=False)
    service.check_quotas(env, spec, existing.id if existing is not None else None)
    check_stack_secrets(service.secrets, env.id, spec, body)
    world = service.world(env)
    _refuse_during_upgrade(world, spec)
    return preview_stack(world, spec, rolling=body.upgrade is not None).to_dict()


def _refuse_during_upgrade(world: World, spec: StackSpec) -> None:
    """As `up` refuses it (store/stacks.py): a service with an upgrade in progress is not changed again."""
    for service in world.services:
        proposed = spec.service(service.name) if service.stack == spec.name else None
        if proposed is None or service.state == ServiceState.ACTIVE:
            continue
        if proposed.to_dict() != service.spec.to_dict() or proposed.scale != service.scale:
            raise Conflict(
                f"service {service.name} has an upgrade in progress ({service.state}): confirm it (corral up "
                "--confirm-upgrade) or roll it back (corral up --rollback) before changing it again",
                field=f"services.{service.name}",
            )
