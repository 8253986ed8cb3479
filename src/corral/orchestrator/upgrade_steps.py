"""One pass of a service's rolling upgrade, rollback or restart, as data: what the pure decisions of
`orchestrator/upgrades.py` and `orchestrator/restarts.py` mean for the store (the step to write) and for the
reconciler in that same pass (which slots it must not see, which old config hash still counts as current, how new
containers are named beside retired ones), and which launch config a slot runs.

Why apart from environment_plan.py: that plan is shared by every service feature; this module keeps the upgrade
glue in one place, hooked in with a few lines. Nothing is written here: the step is part of the environment's plan,
stored with its placements and reasons in one transaction (store/plan_writes.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.container_labels import CONFIG_HASH
from corral.model.entities import ObservedContainer
from corral.model.service_state import ROLLBACK_STATES, UPGRADE_STATES, ServiceState
from corral.model.stack import ContainerSlot, LaunchConfig, Service, ServiceSpec, SlotRecord
from corral.orchestrator.plans import Plan
from corral.orchestrator.restarts import RestartProgress, RestartSlot, decide_restart
from corral.orchestrator.upgrades import (
    ACTIVE,
    DEFAULT_DEADLINE_SECONDS,
    ROLLING_BACK,
    Strategy,
    UpgradeSlot,
    decide,
    next_generation,
    rollback_step,
)


@dataclass(frozen=True)
class UpgradeWrite:
    """One pass of an upgrade or rollback to store: slots retired and stopped, the service's state and progress
    (leaving the rollback states clears the upgrade record)."""

    state: str
    reason: str
    batch_at: float
    retire: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestartWrite:
    """One pass of a restart to store: slots asked to stop, slots asked to start again (a new
    `start_requested_at`), the progress; `progress` None ends the restart (the service is active again)."""

    progress: RestartProgress | None
    reason: str
    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpgradePass:
    """What one pass of a service's upgrade means for the reconciler in that same pass, and what it stores."""

    retired: frozenset[str] = frozenset()  # slot ids the reconciler must not see (not counted, not removed)
    retired_running: frozenset[str] = frozenset()  # retired slots still running (start_first): they hold ports
    accepted_hashes: frozenset[str] = frozenset()  # the old config: old slots are kept, not updated in place
    generations: dict[int, int] = field(default_factory=dict)  # index -> generation of a new slot placed there
    step: UpgradeWrite | None = None  # the upgrade's or rollback's step to store
    start_held: tuple[str, ...] = ()  # a rollback's old containers whose indexes are free again: they start now
    restart: RestartWrite | None = None  # the restart's step to store
    warning: str = ""  # worth a line in the server's log (a restart gave up on a container)

    @property
    def changed(self) -> bool:
        """The service's state, progress or slots are written."""
        return self.step is not None or self.restart is not None

    def name_new_slots(self, plan: Plan) -> Plan:
        """New slots placed beside a retired one of their index get a generation (a Docker name of their own)."""
        if not self.generations:
            return plan

        def named(slot: ContainerSlot) -> ContainerSlot:
            generation = self.generations.get(slot.index)
            return dataclasses.replace(slot, generation=generation) if generation else slot

        return dataclasses.replace(
            plan,
            place=tuple(named(s) for s in plan.place),
            replace=tuple((old, named(new)) for old, new in plan.replace),
        )


def _upgrade_slot(record: SlotRecord, observed: ObservedContainer | None) -> UpgradeSlot:
    return UpgradeSlot(
        id=record.slot.id,
        name=record.slot.name,
        index=record.slot.index,
        config_hash=record.slot.config_hash,
        retired=record.retired,
        running=record.running,
        observed_state=observed.state if observed is not None else None,
        observed_hash=observed.labels.get(CONFIG_HASH) if observed is not None else None,
        health=observed.health if observed is not None else "",
        reason=record.reason,
    )


def previous_spec(service: Service) -> ServiceSpec | None:
    """The spec the service had before the upgrade in progress (None without one)."""
    data = service.upgrade.get("previous_spec") if service.state in UPGRADE_STATES else None
    return ServiceSpec.from_dict(data) if data else None


def launch_for(service: Service, slot: ContainerSlot, previous: ServiceSpec | None) -> LaunchConfig:
    """The launch config a slot runs: the previous one for the old and retired slots of an upgrade."""
    if previous is not None and slot.config_hash == previous.launch.config_hash():
        return previous.launch
    return service.spec.launch


def restart_slot(record: SlotRecord, observed: ObservedContainer | None) -> RestartSlot:
    return RestartSlot(
        id=record.slot.id,
        name=record.slot.name,
        observed_state=observed.state if observed is not None else None,
        health=observed.health if observed is not None else "",
    )


def restart_pass(
    service: Service, records: Sequence[SlotRecord], observed: Mapping[str, ObservedContainer], now: float
) -> UpgradePass:
    """One pass of a `restarting` service's restart (orchestrator/restarts.py): its step, or none when nothing moved."""
    retired = frozenset(r.slot.id for r in records if r.retired)
    progress = RestartProgress.from_dict(service.upgrade.get("restart") or {})
    slots = [restart_slot(r, observed.get(r.slot.id)) for r in records if not r.retired]
    step = decide_restart(progress, slots, now)
    warning = f"{service.stack}/{service.name}: {step.reason}" if step.gave_up else ""
    if step.finished:
        write = RestartWrite(progress=None, reason=step.reason, start=tuple(step.start))
    elif step.progress == progress and step.reason == service.upgrade.get("reason", "") and not step.start:
        return UpgradePass(retired=retired, warning=warning)
    else:
        write = RestartWrite(step.progress, step.reason, stop=tuple(step.stop), start=tuple(step.start))
    return UpgradePass(retired=retired, restart=write, warning=warning)


def upgrade_pass(
    service: Service,
    records: Sequence[SlotRecord],
    observed: Mapping[str, ObservedContainer],
    now: float,
    blocked: Mapping[int, str] | None = None,
) -> UpgradePass:
    """`blocked`: the service's indexes whose new container may still run (occupancy.py): a stop-first rollback
    starts the old container of such an index only once it is free."""
    if service.state == ServiceState.RESTARTING:
        return restart_pass(service, records, observed, now)
    views = [_upgrade_slot(r, observed.get(r.slot.id)) for r in records]
    upgrade = service.upgrade
    if service.state in ROLLBACK_STATES:
        deadline = float(upgrade.get("rollback_deadline_seconds", DEFAULT_DEADLINE_SECONDS))
        config_hash = service.spec.launch.config_hash()
        back = rollback_step(views, config_hash=config_hash, since=service.state_since, now=now, deadline=deadline)
        held = set(upgrade.get("held", []))
        pending = [r for r in records if r.slot.id in held]
        start = tuple(r.slot.id for r in pending if r.slot.index not in (blocked or {}))
        waiting = [(blocked or {})[r.slot.index] for r in pending if r.slot.id not in start]
        if start or waiting:  # not back before every old container runs again
            reason = "; ".join(waiting) or back.reason or "starting the old containers"
            state = back.state if back.state != ACTIVE else ROLLING_BACK
            back = dataclasses.replace(back, state=state, reason=reason)
        changed = back.state != service.state or back.reason != upgrade.get("reason", "")
        write = UpgradeWrite(state=back.state, reason=back.reason, batch_at=0.0) if changed else None
        return UpgradePass(retired=frozenset(r.slot.id for r in records if r.retired), step=write, start_held=start)
    previous = previous_spec(service)
    if previous is None:  # no upgrade: leftovers of one (if any) stay out of the reconciler's way
        return UpgradePass(retired=frozenset(r.slot.id for r in records if r.retired))
    batch_at = float(upgrade.get("batch_at", 0.0))
    step = decide(
        views,
        new_hash=service.spec.launch.config_hash(),
        scale=service.scale,
        strategy=Strategy.from_dict(upgrade.get("strategy", {})),
        batch_at=batch_at,
        now=now,
    )
    changed = step.acts or (step.state, step.reason, step.batch_at) != (
        service.state,
        upgrade.get("reason", ""),
        batch_at,
    )
    write = None
    if changed:
        retire, stop = tuple(step.retire), tuple(step.stop)
        write = UpgradeWrite(state=step.state, reason=step.reason, batch_at=step.batch_at, retire=retire, stop=stop)
    retired = {r.slot.id for r in records if r.retired} | set(step.retire)
    running = {r.slot.id for r in records if r.slot.id in retired and r.running} - set(step.stop)
    generations: dict[int, list[int]] = {}
    for record in records:
        if record.slot.id in retired:
            generations.setdefault(record.slot.index, []).append(record.slot.generation)
    return UpgradePass(
        retired=frozenset(retired),
        retired_running=frozenset(running),
        accepted_hashes=frozenset({previous.launch.config_hash()}),
        generations={index: next_generation(found) for index, found in generations.items()},
        step=write,
    )
