"""Repository of stacks, services and container slots.

Why apart from repository.py: stacks are their own aggregate (a stack owns its services, a service its slots);
the orchestrator loop reads them as one snapshot per environment and writes each environment's plan back in one
transaction (`apply_environment_plan`, store/plan_writes.py).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.exc import IntegrityError

from corral.model import ids
from corral.model.errors import Conflict, NotFound
from corral.model.service_state import UPGRADE_STATES, ServiceState
from corral.model.stack import ContainerSlot, Service, ServiceSpec, SlotRecord, Stack, StackSpec
from corral.orchestrator.environment_plan import EnvironmentPlan
from corral.orchestrator.restarts import RestartProgress
from corral.store.plan_writes import drop_slots, slot_changes, write_environment_plan
from corral.store.repository import Store
from corral.store.tables import LeftoverRow, ServiceRow, SlotRow, StackRow


class StackStore:
    def __init__(self, store: Store) -> None:
        self.session = store.session

    # -- stacks -------------------------------------------------------------------------------------------------

    def create_stack(
        self, environment_id: str, spec: StackSpec, files: dict[str, Any], *, catalog: dict[str, Any] | None = None
    ) -> Stack:
        now = time.time()
        row = StackRow(
            id=ids.new_id("stack"),
            environment_id=environment_id,
            name=spec.name,
            files=files,
            warnings=list(spec.warnings),
            created_at=now,
            updated_at=now,
            catalog=catalog or {},
        )
        try:
            with self.session() as session:
                session.add(row)
                session.flush()
                for position, service in enumerate(spec.services):
                    session.add(_new_service_row(row, service, position, now))
        except IntegrityError as exc:
            raise Conflict(f"a stack named {spec.name!r} already exists in this environment", field="name") from exc
        return _stack(row)

    def update_stack(
        self,
        stack_id: str,
        spec: StackSpec,
        files: dict[str, Any],
        *,
        upgrade_strategies: dict[str, dict[str, Any]] | None = None,
        catalog: dict[str, Any] | None = None,
    ) -> tuple[Stack, list[str]]:
        """Replace a stack's services with those of `spec`; returns the stack and the names of changed services.

        Services whose spec is unchanged are not touched (their containers stay as they are); removed services lose
        their slots (the agents then remove their containers). A service named in `upgrade_strategies` (name ->
        strategy) whose launch config changed starts a rolling upgrade (orchestrator/upgrades.py) instead of an
        update in place. A changed service with an upgrade in progress is a Conflict.
        """
        now = time.time()
        changed: list[str] = []
        with self.session() as session:
            row = session.get(StackRow, stack_id)
            if row is None:
                raise NotFound(f"stack {stack_id!r} not found", field="stack")
            existing = {s.name: s for s in session.scalars(select(ServiceRow).where(ServiceRow.stack_id == stack_id))}
            wanted = {s.name for s in spec.services}
            for name, service_row in existing.items():
                if name not in wanted:
                    drop_slots(session, SlotRow.service_id == service_row.id, now)
                    session.delete(service_row)
                    changed.append(name)
            for position, service in enumerate(spec.services):
                current = existing.get(service.name)
                if current is None:
                    session.add(_new_service_row(row, service, position, now))
                    changed.append(service.name)
                    continue
                new_spec = json.loads(json.dumps(service.to_dict()))  # as stored: tuples become lists
                if current.spec != new_spec or current.scale != service.scale:
                    _refuse_during_upgrade(current)
                    strategy = (upgrade_strategies or {}).get(service.name)
                    if strategy is not None and current.spec.get("launch") != new_spec.get("launch"):
                        _start_upgrade(current, strategy, now)
                if current.spec != new_spec or current.scale != service.scale or current.position != position:
                    current.spec, current.scale, current.position, current.updated_at = (
                        new_spec,
                        service.scale,
                        position,
                        now,
                    )
                    changed.append(service.name)
            row.files, row.warnings, row.updated_at = files, list(spec.warnings), now
            if catalog is not None:  # None keeps the origin; {} clears it (the stack is no longer the template's)
                row.catalog = catalog
            return _stack(row), changed

    def list_stacks(self, environment_id: str | None = None) -> list[Stack]:
        with self.session() as session:
            query = select(StackRow).order_by(StackRow.name)
            if environment_id is not None:
                query = query.where(StackRow.environment_id == environment_id)
            return [_stack(row) for row in session.scalars(query)]

    def find_stack(self, environment_id: str, ref: str) -> Stack:
        with self.session() as session:
            row = session.scalars(
                select(StackRow).where(
                    StackRow.environment_id == environment_id, (StackRow.id == ref) | (StackRow.name == ref)
                )
            ).first()
            if row is None:
                raise NotFound(f"stack {ref!r} not found in this environment", field="stack")
            return _stack(row)

    def get_stack(self, stack_id: str) -> Stack:
        with self.session() as session:
            row = session.get(StackRow, stack_id)
            if row is None:
                raise NotFound(f"stack {stack_id!r} not found", field="stack")
            return _stack(row)

    def stack_files(self, stack_id: str) -> dict[str, Any]:
        with self.session() as session:
            row = session.get(StackRow, stack_id)
            return dict(row.files) if row is not None else {}

    def delete_stack(self, stack_id: str) -> None:
        with self.session() as session:
            drop_slots(session, SlotRow.stack_id == stack_id, time.time())
            session.execute(delete(ServiceRow).where(ServiceRow.stack_id == stack_id))
            session.execute(delete(StackRow).where(StackRow.id == stack_id))

    # -- services -----------------------------------------------------------------------------------------------

    def list_services(self, *, environment_id: str | None = None, stack_id: str | None = None) -> list[Service]:
        """From plain rows, each spec parsed once per distinct text (`_spec_of`): the orchestrator reads every
        service on each pass that follows a write, and most specs never change."""
        columns = [c for c in ServiceRow.__table__.c if c.name != "spec"]
        query = select(*columns, cast(ServiceRow.spec, Text).label("spec_text"), StackRow.name.label("stack_name"))
        query = query.join(StackRow, StackRow.id == ServiceRow.stack_id)
        if environment_id is not None:
            query = query.where(ServiceRow.environment_id == environment_id)
        if stack_id is not None:
            query = query.where(ServiceRow.stack_id == stack_id)
        with self.session() as session:
            rows = session.execute(query.order_by(StackRow.name, ServiceRow.position)).mappings().all()
        return [_service(SimpleNamespace(**row), row["stack_name"], spec=_spec_of(row["spec_text"])) for row in rows]

    def service_scales(self, environment_id: str) -> list[tuple[str, int]]:
        """(stack id, scale) of every service of the environment, without their specs (the quota check's usage)."""
        with self.session() as session:
            query = select(ServiceRow.stack_id, ServiceRow.scale).where(ServiceRow.environment_id == environment_id)
            return [(stack_id, int(scale)) for stack_id, scale in session.execute(query).all()]

    def get_service(self, service_id: str) -> Service:
        with self.session() as session:
            result = session.execute(
                select(ServiceRow, StackRow.name)
                .join(StackRow, StackRow.id == ServiceRow.stack_id)
                .where(ServiceRow.id == service_id)
            ).first()
            if result is None:
                raise NotFound(f"service {service_id!r} not found", field="service")
            return _service(result[0], result[1])

    def set_scale(self, service_id: str, scale: int) -> None:
        with self.session() as session:
            session.execute(
                update(ServiceRow).where(ServiceRow.id == service_id).values(scale=scale, updated_at=time.time())
            )

    # -- rolling upgrades (decided by orchestrator/upgrades.py) -------------------------------------------------

    def confirm_upgrade(self, service_id: str) -> None:
        """Finish an upgrade: its retired slots go (the agents remove their containers), the service is active."""
        with self.session() as session:
            row = session.get(ServiceRow, service_id)
            if row is None:
                raise NotFound(f"service {service_id!r} not found", field="service")
            if row.state != ServiceState.UPGRADED:
                what = "has no upgrade to confirm" if row.state == _SETTLED else f"is {row.state}, not upgraded yet"
                raise Conflict(f"service {row.name} {what}", field="service")
            drop_slots(session, (SlotRow.service_id == row.id) & SlotRow.retired.is_(True), time.time())
            row.upgrade, row.state, row.state_since, row.updated_at = {}, _SETTLED, time.time(), time.time()

    def rollback_upgrade(self, service_id: str, deadline_seconds: float) -> None:
        """Undo an upgrade (upgrading, upgraded or failed): the new slots go, the retired ones run again with their
        old config (the same containers), the previous spec and scale come back; the service is rolling-back until
        its containers run again (orchestrator/upgrades.py `rollback_step`)."""
        now = time.time()
        with self.session() as session:
            row = session.get(ServiceRow, service_id)
            if row is None:
                raise NotFound(f"service {service_id!r} not found", field="service")
            if row.state not in UPGRADE_STATES or not row.upgrade:
                raise Conflict(f"service {row.name} has no upgrade to roll back ({row.state})", field="service")
            previous = ServiceSpec.from_dict(row.upgrade["previous_spec"])
            old_hash = previous.launch.config_hash()
            new_slots = (SlotRow.service_id == row.id) & SlotRow.retired.is_(False) & (SlotRow.config_hash != old_hash)
            drop_slots(session, new_slots, now)
            start_first = bool((row.upgrade.get("strategy") or {}).get("start_first", False))
            retired = SlotRow.service_id == row.id, SlotRow.retired.is_(True)
            # stop-first: the old containers start again once the new ones of their indexes are observed stopped
            held = (
                []
                if start_first
                else list(session.scalars(select(SlotRow.id).where(*retired, SlotRow.running.is_(False))))
            )
            session.execute(
                update(SlotRow)
                .where(*retired)
                .values(retired=False, running=True, start_requested_at=now, updated_at=now)
            )
            if held:
                session.execute(update(SlotRow).where(SlotRow.id.in_(held)).values(running=False))
            row.spec, row.scale = row.upgrade["previous_spec"], int(row.upgrade["previous_scale"])
            row.upgrade = {"rollback_deadline_seconds": deadline_seconds, "reason": "", "held": held}
            row.state, row.state_since, row.updated_at = ServiceState.ROLLING_BACK.value, now, now

    # -- restarts (decided by orchestrator/restarts.py, driven by the upgrade pass) ---------------------------

    def request_restart(self, service_id: str, progress: RestartProgress) -> None:
        """Store a restart of the service's slots: it is `restarting` until the orchestrator's passes are done with
        it. A restart asked for during another one joins it; during an upgrade or rollback it is a Conflict."""
        now = time.time()
        with self.session() as session:
            row = session.get(ServiceRow, service_id)
            if row is None:
                raise NotFound(f"service {service_id!r} not found", field="service")
            if row.state == ServiceState.RESTARTING and (row.upgrade or {}).get("restart") is not None:
                current = RestartProgress.from_dict(row.upgrade["restart"])
                row.upgrade = {**row.upgrade, "restart": current.with_slots(progress.pending).to_dict()}
            elif row.state != _SETTLED:
                raise Conflict(
                    f"service {row.name} is {row.state}: confirm or roll back its upgrade before restarting it",
                    field="service",
                )
            elif progress.pending:
                row.upgrade = {"restart": progress.to_dict(), "reason": ""}
                row.state, row.state_since = ServiceState.RESTARTING.value, now
            row.updated_at = now

    # -- slots --------------------------------------------------------------------------------------------------

    def list_slots(
        self, *, environment_id: str | None = None, host_id: str | None = None, service_id: str | None = None
    ) -> list[SlotRecord]:
        with self.session() as session:
            # plain rows, not ORM objects: this reads every slot of an environment for each view and pass
            query = select(SlotRow.__table__).order_by(SlotRow.stack, SlotRow.service, SlotRow.index, SlotRow.id)
            if environment_id is not None:
                query = query.where(SlotRow.environment_id == environment_id)
            if host_id is not None:
                query = query.where(SlotRow.host_id == host_id)
            if service_id is not None:
                query = query.where(SlotRow.service_id == service_id)
            return [_slot(SimpleNamespace(**row)) for row in session.execute(query).mappings()]

    def get_slot(self, slot_id: str) -> SlotRecord:
        with self.session() as session:
            row = session.get(SlotRow, slot_id)
            if row is None:
                raise NotFound(f"container {slot_id!r} not found", field="container")
            return _slot(row)

    def apply_slot_changes(
        self,
        *,
        service: Service,
        add: Iterable[ContainerSlot] = (),
        remove: Iterable[str] = (),
        update_hash: Iterable[ContainerSlot] = (),
    ) -> None:
        """Write one plan's results for one service in one transaction."""
        with self.session() as session:
            slot_changes(session, service, add=add, remove=remove, update_hash=update_hash, now=time.time())

    def apply_environment_plan(self, plan: EnvironmentPlan) -> None:
        """Store every write of one pass's plan for an environment in one transaction (store/plan_writes.py); a
        plan that writes nothing opens none."""
        if plan.writes:
            with self.session() as session:
                write_environment_plan(session, plan, time.time())

    # -- leftovers: removed slots whose containers may still run (orchestrator/occupancy.py) ------------------

    def forget_leftovers(self, slot_ids: Iterable[str]) -> None:
        """Their containers are observed gone (or their hosts disconnected): their indexes are free again."""
        gone = list(slot_ids)
        if gone:
            with self.session() as session:
                session.execute(delete(LeftoverRow).where(LeftoverRow.slot_id.in_(gone)))

    def set_slot_ips(self, addresses: dict[str, str]) -> None:
        """Store overlay addresses (slot id -> address, "" for none) the IPAM gave (server/control/network_pass.py)."""
        if not addresses:
            return
        with self.session() as session:  # one UPDATE run for every row (a bulk update by primary key)
            session.execute(update(SlotRow), [{"id": slot_id, "ip": address} for slot_id, address in addresses.items()])

    def set_slot_host_ports(self, host_ports: dict[str, tuple[tuple[int, str, int], ...]]) -> None:
        """Store the random host ports the server picked (slot id -> its ports; orchestrator/host_ports.py)."""
        if not host_ports:
            return
        with self.session() as session:  # one UPDATE run for every row (a bulk update by primary key)
            rows = [{"id": slot_id, "host_ports": [list(p) for p in ports]} for slot_id, ports in host_ports.items()]
            session.execute(update(SlotRow), rows)

    def set_slot_reason(self, host_id: str, slot_id: str, reason: str) -> bool:
        """Returns whether a slot of that host took it: an agent reports only on its own host's slots (another
        host's slot id changes nothing), and may report on a slot that was just removed."""
        with self.session() as session:
            result = session.execute(
                update(SlotRow).where(SlotRow.id == slot_id, SlotRow.host_id == host_id).values(reason=reason)
            )
            return bool(getattr(result, "rowcount", 0))

    def set_running(self, slot_ids: Sequence[str], running: bool, *, start_requested_at: float | None = None) -> None:
        values: dict[str, Any] = {"running": running}
        if start_requested_at is not None:
            values["start_requested_at"] = start_requested_at
        with self.session() as session:
            session.execute(update(SlotRow).where(SlotRow.id.in_(list(slot_ids))).values(**values))


_SETTLED = ServiceState.ACTIVE.value


def _refuse_during_upgrade(row: ServiceRow) -> None:
    if row.state == ServiceState.RESTARTING:
        raise Conflict(
            f"service {row.name} is restarting: change it once the restart is done", field=f"services.{row.name}"
        )
    if row.state != _SETTLED:
        raise Conflict(
            f"service {row.name} has an upgrade in progress ({row.state}): confirm it (corral up --confirm-upgrade) "
            "or roll it back (corral up --rollback) before changing it again",
            field=f"services.{row.name}",
        )


def _start_upgrade(row: ServiceRow, strategy: dict[str, Any], now: float) -> None:
    row.upgrade = {
        "strategy": dict(strategy),
        "previous_spec": row.spec,
        "previous_scale": row.scale,
        "started_at": now,
        "batch_at": 0.0,
        "reason": "",
    }
    row.state, row.state_since = ServiceState.UPGRADING.value, now


def _new_service_row(stack: StackRow, service: ServiceSpec, position: int, now: float) -> ServiceRow:
    return ServiceRow(
        id=ids.new_id("svc"),
        stack_id=stack.id,
        environment_id=stack.environment_id,
        name=service.name,
        position=position,
        spec=service.to_dict(),
        scale=service.scale,
        reason="",
        created_at=now,
        updated_at=now,
    )


def _stack(row: StackRow) -> Stack:
    return Stack(
        id=row.id,
        environment_id=row.environment_id,
        name=row.name,
        warnings=tuple(row.warnings or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
        catalog=dict(row.catalog or {}),
    )


@functools.lru_cache(maxsize=16384)
def _spec_of(text: str) -> ServiceSpec:
    """A stored spec's text -> the (immutable) spec, shared by every read of the same text."""
    return ServiceSpec.from_dict(json.loads(text))


def _service(row: ServiceRow | SimpleNamespace, stack_name: str, *, spec: ServiceSpec | None = None) -> Service:
    return Service(
        id=row.id,
        stack_id=row.stack_id,
        environment_id=row.environment_id,
        stack=stack_name,
        name=row.name,
        spec=spec if spec is not None else ServiceSpec.from_dict(row.spec),
        scale=row.scale,
        position=row.position,
        reason=row.reason,
        state=row.state,
        state_since=row.state_since,
        upgrade=dict(row.upgrade or {}),
        updated_at=row.updated_at or 0.0,
    )


def _slot(row: SlotRow | SimpleNamespace) -> SlotRecord:
    return SlotRecord(
        slot=ContainerSlot(
            id=row.id,
            environment_id=row.environment_id,
            stack=row.stack,
            service=row.service,
            index=row.index,
            host_id=row.host_id,
            config_hash=row.config_hash,
            generation=row.generation,
        ),
        stack_id=row.stack_id,
        service_id=row.service_id,
        running=row.running,
        start_requested_at=row.start_requested_at,
        reason=row.reason,
        created_at=row.created_at,
        retired=row.retired,
        updated_at=row.updated_at,
        ip=row.ip or "",
        host_ports=tuple((int(c), str(p), int(h)) for c, p, h in row.host_ports or ()),
    )
