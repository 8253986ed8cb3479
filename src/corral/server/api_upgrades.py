"""REST routes that finish or undo a rolling upgrade, and the rolling restart of a service.

Why apart from api_stacks.py: starting an upgrade is part of `PUT /v1/stacks` (`upgrade` field), but confirming,
rolling back and restarting in batches are actions of their own (Cattle's finishupgrade / rollback / restart with a
`rollingRestartStrategy`). The orchestrator does the work (orchestrator/upgrades.py through server/upgrade_pass.py);
these routes only change the stored state and wake it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from corral.model.entities import Principal
from corral.model.errors import Conflict, InvalidInput
from corral.model.stack import Service
from corral.orchestrator.upgrades import (
    DEFAULT_DEADLINE_SECONDS,
    READY_HEALTH,
    UPGRADE_STATES,
    UPGRADED,
    Strategy,
)
from corral.server.api import Strict, store_of
from corral.server.auth import require_admin
from corral.server.stack_views import EnvironmentState, service_view, stack_view
from corral.store.stacks import StackStore

log = logging.getLogger("corral.upgrades")
router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
STOP_WAIT_SECONDS = 60.0
READY_WAIT_SECONDS = 300.0
_background: set[asyncio.Task[None]] = set()


class RollingRestart(Strict):
    """`corral restart STACK/SERVICE --batch-size N --interval MS`: stop and start `batch_size` containers at a
    time, the next batch once the previous one runs (and is healthy, when checked) and `interval_ms` has passed."""

    batch_size: int = 1
    interval_ms: int = 0


def _stacks(request: Request) -> StackStore:
    stacks: StackStore = request.app.state.stacks
    return stacks


def _done(request: Request, service: Service, action: str) -> None:
    request.app.state.orchestrator.trigger()
    request.app.state.bus.publish(
        "service", "updated", {"id": service.id, "name": service.name, "action": action}, service.environment_id
    )


def _rollback(stacks: StackStore, service: Service) -> None:
    """A rollback gets the upgrade's batch deadline, and at least the default one (a short deadline that made the
    upgrade fail should not make the way back fail too)."""
    deadline = Strategy.from_dict(service.upgrade.get("strategy", {})).deadline_seconds
    stacks.rollback_upgrade(service.id, max(deadline, DEFAULT_DEADLINE_SECONDS))


@router.post("/services/{service_id}/confirm-upgrade")
def confirm_service_upgrade(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    stacks = _stacks(request)
    stacks.confirm_upgrade(service_id)
    service = stacks.get_service(service_id)
    _done(request, service, "confirm-upgrade")
    return service_view(service, EnvironmentState.load(store_of(request), stacks, service.environment_id))


@router.post("/services/{service_id}/rollback")
def rollback_service(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    stacks = _stacks(request)
    _rollback(stacks, stacks.get_service(service_id))
    service = stacks.get_service(service_id)
    _done(request, service, "rollback")
    return service_view(service, EnvironmentState.load(store_of(request), stacks, service.environment_id))


@router.post("/stacks/{stack_id}/confirm-upgrade")
def confirm_stack_upgrade(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    """Confirm every upgraded service of the stack; a service still upgrading is a 409 and nothing is confirmed."""
    stacks = _stacks(request)
    stack = stacks.get_stack(stack_id)
    services = [s for s in stacks.list_services(stack_id=stack.id) if s.state in UPGRADE_STATES]
    busy = [f"{s.name} is {s.state}" for s in services if s.state != UPGRADED]
    if busy:
        raise Conflict(f"stack {stack.name}: cannot confirm yet: {', '.join(busy)}", field="stack")
    if not services:
        raise Conflict(f"stack {stack.name} has no upgrade to confirm", field="stack")
    for service in services:
        stacks.confirm_upgrade(service.id)
        _done(request, service, "confirm-upgrade")
    return stack_view(stack, EnvironmentState.load(store_of(request), stacks, stack.environment_id))


@router.post("/stacks/{stack_id}/rollback")
def rollback_stack(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    """Roll back every service of the stack with an upgrade in progress, upgraded or failed."""
    stacks = _stacks(request)
    stack = stacks.get_stack(stack_id)
    services = [s for s in stacks.list_services(stack_id=stack.id) if s.state in UPGRADE_STATES]
    if not services:
        raise Conflict(f"stack {stack.name} has no upgrade to roll back", field="stack")
    for service in services:
        _rollback(stacks, service)
        _done(request, service, "rollback")
    return stack_view(stack, EnvironmentState.load(store_of(request), stacks, stack.environment_id))


def validate_rolling_restart(body: RollingRestart) -> None:
    if body.batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, not {body.batch_size}", field="batch_size")
    if body.interval_ms < 0:
        raise InvalidInput(f"interval_ms must be 0 or more, not {body.interval_ms}", field="interval_ms")


def start_rolling_restart(request: Request, slot_ids: list[str], body: RollingRestart) -> None:
    """Restart `slot_ids` in batches, in the background (built on the desired state, like a plain restart)."""
    validate_rolling_restart(body)
    app_state = request.app.state
    stacks: StackStore = app_state.stacks

    def observed_states(ids: list[str]) -> list[tuple[str, str]]:
        environment_ids = {stacks.get_slot(i).slot.environment_id for i in ids}
        found = []
        for environment_id in environment_ids:
            state = EnvironmentState.load(app_state.store, stacks, environment_id)
            found += [(c.state, c.health) if (c := state.observed.get(i)) else ("", "") for i in ids]
        return found

    async def wait_until(ids: list[str], done: Any, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if done(await run_in_threadpool(observed_states, ids)):
                return True
        return False

    async def restart() -> None:
        for start in range(0, len(slot_ids), body.batch_size):
            batch = slot_ids[start : start + body.batch_size]
            await run_in_threadpool(stacks.set_running, batch, False)
            app_state.orchestrator.trigger()
            await wait_until(batch, lambda found: all(state != "running" for state, _ in found), STOP_WAIT_SECONDS)
            await run_in_threadpool(stacks.set_running, batch, True, start_requested_at=time.time())
            app_state.orchestrator.trigger()
            ready = await wait_until(
                batch,
                lambda found: all(state == "running" and health in READY_HEALTH for state, health in found),
                READY_WAIT_SECONDS,
            )
            if not ready:
                log.warning("rolling restart stopped: %s did not run again within %.0f s", batch, READY_WAIT_SECONDS)
                return
            await asyncio.sleep(body.interval_ms / 1000.0)

    task = asyncio.get_running_loop().create_task(restart(), name="rolling-restart")
    _background.add(task)
    task.add_done_callback(_background.discard)
