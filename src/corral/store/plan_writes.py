"""Writing one orchestrator pass's plan for an environment (orchestrator/environment_plan.py) in one transaction:
upgrade, rollback and restart steps, a rollback's held starts, slots added, removed (kept as leftovers) and
updated, the services' reasons, the leftovers released.

Why one transaction: readers (the API, the in-memory state of state/) see a pass's outcome whole or not at all, never
placements without their reasons or a retired slot without its replacement; a failed commit stores nothing, and the
next pass plans again from what is stored. The in-memory state learns of the writes as of any other commit: the
journal (store/journal.py) hands it the scopes of the transaction once it has committed.

Why apart from stacks.py: these are the orchestrator's writes, decided elsewhere and only carried out here; the
stack repository keeps the writes of users' commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from corral.model.service_state import ServiceState
from corral.model.stack import ContainerSlot, Service
from corral.orchestrator.environment_plan import EnvironmentPlan
from corral.orchestrator.upgrade_steps import RestartWrite, UpgradeWrite
from corral.store.tables import LeftoverRow, ServiceRow, SlotRow

_SETTLED = ServiceState.ACTIVE.value


def write_environment_plan(session: Session, plan: EnvironmentPlan, now: float) -> None:
    """Every write of `plan`, in the order the pass decided them, into the caller's transaction. A service that a
    user's command changed (or removed) since the snapshot the plan was made from gets none of its writes: the plan
    for it is stale (a rollback that lands during the pass must not be overwritten by the upgrade's next step), and
    the next pass plans it again from what is stored."""
    touched = {p.service.id for p in plan.services if p.changed} | set(plan.reasons)
    current = _as_planned(session, touched, {p.service.id: p.service for p in plan.services})
    for part in plan.services:
        service, upgrade = part.service, part.upgrade
        if not part.changed or service.id not in current:
            continue
        if upgrade.start_held:
            start_held(session, service.id, upgrade.start_held, now)
        if upgrade.step is not None:
            record_upgrade_step(session, service.id, upgrade.step, now)
        if upgrade.restart is not None:
            record_restart_step(session, service.id, upgrade.restart, now)
        if not part.plan.empty:
            slot_changes(
                session,
                service,
                add=[*part.plan.place, *(new for _, new in part.plan.replace)],
                remove=[*part.plan.remove, *(old for old, _ in part.plan.replace)],
                update_hash=part.plan.update,
                now=now,
            )
    for service_id, reason in plan.reasons.items():
        if service_id in current:
            session.execute(update(ServiceRow).where(ServiceRow.id == service_id).values(reason=reason))
    if plan.forget:
        session.execute(delete(LeftoverRow).where(LeftoverRow.slot_id.in_(list(plan.forget))))


def _as_planned(session: Session, service_ids: set[str], planned: dict[str, Service]) -> set[str]:
    """Of `service_ids`, those stored as they were planned from: same state, and no user's command since. The rows
    are locked first (a write that changes nothing): a command committed between this check and the pass's own
    writes would otherwise be overwritten by them. PostgreSQL holds the rows until the commit; SQLite, which takes
    no lock for a read outside a write transaction, holds its one write lock from this statement on."""
    if not service_ids:
        return set()
    ids = sorted(service_ids)
    session.execute(update(ServiceRow).where(ServiceRow.id.in_(ids)).values(updated_at=ServiceRow.updated_at))
    query = select(ServiceRow.id, ServiceRow.state, ServiceRow.updated_at).where(ServiceRow.id.in_(ids))
    return {
        service_id
        for service_id, state, updated_at in session.execute(query).all()
        if state == planned[service_id].state and (updated_at or 0.0) == planned[service_id].updated_at
    }


def record_upgrade_step(session: Session, service_id: str, step: UpgradeWrite, now: float) -> None:
    """One pass of an upgrade or rollback: slots retired and stopped, the service's state and progress. Leaving the
    rollback states clears the upgrade record."""
    row = session.get(ServiceRow, service_id)
    if row is None:
        return
    if step.retire:
        session.execute(update(SlotRow).where(SlotRow.id.in_(list(step.retire))).values(retired=True, updated_at=now))
    if step.stop:
        session.execute(update(SlotRow).where(SlotRow.id.in_(list(step.stop))).values(running=False, updated_at=now))
    if step.state == _SETTLED:
        row.upgrade = {}
    else:
        row.upgrade = {**(row.upgrade or {}), "batch_at": step.batch_at, "reason": step.reason}
    if row.state != step.state:
        row.state, row.state_since = step.state, now


def start_held(session: Session, service_id: str, slot_ids: Sequence[str], now: float) -> None:
    """A rollback's old containers whose indexes are free again start now."""
    row = session.get(ServiceRow, service_id)
    if row is None:
        return
    session.execute(
        update(SlotRow)
        .where(SlotRow.id.in_(list(slot_ids)))
        .values(running=True, start_requested_at=now, updated_at=now)
    )
    held = [sid for sid in (row.upgrade or {}).get("held", []) if sid not in set(slot_ids)]
    row.upgrade = {**(row.upgrade or {}), "held": held}


def record_restart_step(session: Session, service_id: str, step: RestartWrite, now: float) -> None:
    """One pass of a restart: slots asked to stop, slots asked to start again (a new `start_requested_at`), the
    progress; no progress ends the restart (the service is active again)."""
    row = session.get(ServiceRow, service_id)
    if row is None or row.state != ServiceState.RESTARTING:
        return
    if step.stop:
        session.execute(update(SlotRow).where(SlotRow.id.in_(list(step.stop))).values(running=False, updated_at=now))
    if step.start:
        session.execute(
            update(SlotRow)
            .where(SlotRow.id.in_(list(step.start)))
            .values(running=True, start_requested_at=now, updated_at=now)
        )
    if step.progress is None:
        row.upgrade, row.state, row.state_since = {}, _SETTLED, now
    else:
        row.upgrade = {**(row.upgrade or {}), "restart": step.progress.to_dict(), "reason": step.reason}


def slot_changes(
    session: Session,
    service: Service,
    *,
    add: Iterable[ContainerSlot] = (),
    remove: Iterable[str] = (),
    update_hash: Iterable[ContainerSlot] = (),
    now: float,
) -> None:
    """One service's plan: slots removed (kept as leftovers until their containers are gone), added, updated."""
    removed = list(remove)
    if removed:
        drop_slots(session, SlotRow.id.in_(removed), now)
    for slot in add:
        session.add(
            SlotRow(
                id=slot.id,
                environment_id=slot.environment_id,
                stack_id=service.stack_id,
                service_id=service.id,
                stack=slot.stack,
                service=slot.service,
                index=slot.index,
                host_id=slot.host_id,
                config_hash=slot.config_hash,
                running=service.spec.start_on_create,
                start_requested_at=0.0,
                reason="",
                created_at=now,
                generation=slot.generation,
            )
        )
    for slot in update_hash:
        session.execute(
            update(SlotRow)
            .where(SlotRow.id == slot.id)
            .values(config_hash=slot.config_hash, host_id=slot.host_id, reason="")
        )


def drop_slots(session: Session, which: ColumnElement[bool], now: float) -> None:
    """Delete the slots `which` selects, keeping each as a leftover until its container is observed gone."""
    for row in session.execute(select(SlotRow.__table__).where(which)).mappings():
        if session.get(LeftoverRow, row["id"]) is None:
            slot = ContainerSlot(
                id=row["id"],
                environment_id=row["environment_id"],
                stack=row["stack"],
                service=row["service"],
                index=row["index"],
                host_id=row["host_id"],
                config_hash=row["config_hash"],
                generation=row["generation"],
            )
            session.add(
                LeftoverRow(
                    slot_id=slot.id,
                    environment_id=slot.environment_id,
                    stack=slot.stack,
                    service=slot.service,
                    index=slot.index,
                    host_id=slot.host_id,
                    name=slot.name,
                    created_at=now,
                    ip=row["ip"] or "",
                )
            )
    session.execute(delete(SlotRow).where(which))
