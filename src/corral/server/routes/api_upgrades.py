"""REST routes that finish or undo a rolling upgrade (a rolling restart is stored by services/stacks.py).

Why apart from api_stacks.py: starting an upgrade is part of `PUT /v1/stacks` (`upgrade` field), but confirming,
rolling back and restarting in batches are actions of their own (Cattle's finishupgrade / rollback / restart with a
`rollingRestartStrategy`). The orchestrator does the work (orchestrator/upgrades.py through
orchestrator/upgrade_steps.py); these routes only change the stored state and wake it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from corral.model.entities import Principal
from corral.model.errors import Conflict
from corral.model.service_state import UPGRADE_STATES, ServiceState
from corral.model.stack import Service
from corral.orchestrator.upgrades import DEFAULT_DEADLINE_SECONDS, Strategy
from corral.server.security.auth import require_admin
from corral.server.services.stacks import stack_service_of, stacks_of, store_of
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.stack_views import service_view, stack_view
from corral.store.stacks import StackStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


def _rollback(stacks: StackStore, service: Service) -> None:
    """A rollback gets the upgrade's batch deadline, and at least the default one (a short deadline that made the
    upgrade fail should not make the way back fail too)."""
    deadline = Strategy.from_dict(service.upgrade.get("strategy", {})).deadline_seconds
    stacks.rollback_upgrade(service.id, max(deadline, DEFAULT_DEADLINE_SECONDS))


@router.post("/services/{service_id}/confirm-upgrade")
def confirm_service_upgrade(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    stacks = stacks_of(request)
    stacks.confirm_upgrade(service_id)
    service = stacks.get_service(service_id)
    stack_service_of(request).service_changed(service, "confirm-upgrade")
    return service_view(service, EnvironmentState.load(store_of(request), stacks, service.environment_id))


@router.post("/services/{service_id}/rollback")
def rollback_service(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    stacks = stacks_of(request)
    _rollback(stacks, stacks.get_service(service_id))
    service = stacks.get_service(service_id)
    stack_service_of(request).service_changed(service, "rollback")
    return service_view(service, EnvironmentState.load(store_of(request), stacks, service.environment_id))


@router.post("/stacks/{stack_id}/confirm-upgrade")
def confirm_stack_upgrade(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    """Confirm every upgraded service of the stack; a service still upgrading is a 409 and nothing is confirmed."""
    stacks = stacks_of(request)
    stack = stacks.get_stack(stack_id)
    services = [s for s in stacks.list_services(stack_id=stack.id) if s.state in UPGRADE_STATES]
    busy = [f"{s.name} is {s.state}" for s in services if s.state != ServiceState.UPGRADED]
    if busy:
        raise Conflict(f"stack {stack.name}: cannot confirm yet: {', '.join(busy)}", field="stack")
    if not services:
        raise Conflict(f"stack {stack.name} has no upgrade to confirm", field="stack")
    for service in services:
        stacks.confirm_upgrade(service.id)
        stack_service_of(request).service_changed(service, "confirm-upgrade")
    return stack_view(stack, EnvironmentState.load(store_of(request), stacks, stack.environment_id))


@router.post("/stacks/{stack_id}/rollback")
def rollback_stack(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    """Roll back every service of the stack with an upgrade in progress, upgraded or failed."""
    stacks = stacks_of(request)
    stack = stacks.get_stack(stack_id)
    services = [s for s in stacks.list_services(stack_id=stack.id) if s.state in UPGRADE_STATES]
    if not services:
        raise Conflict(f"stack {stack.name} has no upgrade to roll back", field="stack")
    for service in services:
        _rollback(stacks, service)
        stack_service_of(request).service_changed(service, "rollback")
    return stack_view(stack, EnvironmentState.load(store_of(request), stacks, stack.environment_id))
