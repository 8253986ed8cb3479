"""The orchestrator pass's part for rolling upgrades, rollbacks and restarts (server/restart_pass.py): run the
pure decision of `orchestrator/upgrades.py` for one service, store its step, and tell the reconciler what to leave
alone.

Why apart from orchestration.py: that loop is shared by every service feature; this module keeps the upgrade glue
(which slots the reconciler must not see, which old config hash still counts as current, how new containers are
named beside retired ones, which launch config a slot runs) in one place, hooked in with a few lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.entities import ObservedContainer
from corral.model.service_state import ROLLBACK_STATES, UPGRADE_STATES, ServiceState
from corral.model.stack import ContainerSlot, LaunchConfig, Service, ServiceSpec, SlotRecord
from corral.orchestrator.plans import Plan
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
from corral.runtime.labels import CONFIG_HASH
from corral.server.restart_pass import run_restart_pass
from corral.store.stacks import StackStore


@dataclass(frozen=True)
class UpgradePass:
    """What one pass of a service's upgrade means for the reconciler in that same pass."""

    retired: frozenset[str] = frozenset()  # slot ids the reconciler must not see (not counted, not removed)
    retired_running: frozenset[str] = frozenset()  # retired slots still running (start_first): they hold ports
    accepted_hashes: frozenset[str] = frozenset()  # the old config: old slots are kept, not updated in place
    generations: dict[int, int] = field(default_factory=dict)  # index -> generation of a new slot placed there
    changed: bool = False  # the service's state, progress or slots were written

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


def run_upgrade_pass(
    stacks: StackStore,
    service: Service,
    records: Sequence[SlotRecord],
    observed: dict[str, ObservedContainer],
    now: float,
    blocked: Mapping[int, str] | None = None,
) -> UpgradePass:
    """`blocked`: the service's indexes whose new container may still run (occupancy.py): a stop-first rollback
    starts the old container of such an index only once it is free."""
    if service.state == ServiceState.RESTARTING:
        changed = run_restart_pass(stacks, service, records, observed, now)
        return UpgradePass(retired=frozenset(r.slot.id for r in records if r.retired), changed=changed)
    views = [_upgrade_slot(r, observed.get(r.slot.id)) for r in records]
    upgrade = service.upgrade
    if service.state in ROLLBACK_STATES:
        deadline = float(upgrade.get("rollback_deadline_seconds", DEFAULT_DEADLINE_SECONDS))
        config_hash = service.spec.launch.config_hash()
        back = rollback_step(views, config_hash=config_hash, since=service.state_since, now=now, deadline=deadline)
        held = set(upgrade.get("held", []))
        pending = [r for r in records if r.slot.id in held]
        start = [r.slot.id for r in pending if r.slot.index not in (blocked or {})]
        if start:
            stacks.start_held(service.id, start)
        waiting = [(blocked or {})[r.slot.index] for r in pending if r.slot.id not in start]
        if start or waiting:  # not back before every old container runs again
            reason = "; ".join(waiting) or back.reason or "starting the old containers"
            state = back.state if back.state != ACTIVE else ROLLING_BACK
            back = dataclasses.replace(back, state=state, reason=reason)
        changed = back.state != service.state or back.reason != upgrade.get("reason", "")
        if changed:
            stacks.record_upgrade_step(service.id, state=back.state, reason=back.reason, batch_at=0.0)
        return UpgradePass(retired=frozenset(r.slot.id for r in records if r.retired), changed=changed)
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
    if changed:
        stacks.record_upgrade_step(
            service.id, state=step.state, reason=step.reason, batch_at=step.batch_at, retire=step.retire, stop=step.stop
        )
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
        changed=changed,
    )
