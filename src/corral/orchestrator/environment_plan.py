"""One orchestrator pass over one environment, as one pure function: `plan_environment` takes an immutable view of
the environment (its hosts, services, slots, the containers its hosts report, the old containers that may still run,
the health replacements so far, the time and an id maker) and returns one frozen `EnvironmentPlan`: per service its
reconcile plan and its upgrade, rollback or restart step, the service reasons that changed, the addresses new slots
keep, the leftovers the store may forget, the new health history.

Why one plan: the server applies it in one transaction (store/plan_writes.py), so a reader never sees placements
without their reasons or an upgrade step without its slots, and a failed commit stores nothing of the pass (Nomad's
reconciler over a snapshot, one plan applied by `plan_apply`). Why pure: the same inputs give the same plan; no store,
agent or clock in it, so it is tested with Hypothesis (tests/unit/orchestrator/test_environment_plan.py).

Services are planned primaries first over one shared host load (pass_load.py): each service sees the slots the
services before it placed in this pass (ports, spread), as the store would after their writes.

Incremental passes: the caller may name services as `unchanged` (nothing a plan of theirs reads changed since a pass
that planned nothing for them; the server tracks it with the views' marks). Such a service is left out of the pass
when planning it again cannot change anything (`may_skip`: fully placed, no upgrade or restart, no health backoff,
no old container holding one of its indexes, its whole sidekick unit unchanged): its slots stay in the host load as
they are, so the other services are planned exactly as in a full pass. `EnvironmentPlan.quiet` names the services
that may be left out next time.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from corral.model.entities import ObservedContainer
from corral.model.images import archs_of_image
from corral.model.reasons import group_unplaced
from corral.model.service_state import ServiceState
from corral.model.stack import LeftoverRecord, Service, ServiceSpec, SlotRecord
from corral.orchestrator.health import Replacement, record_replacements
from corral.orchestrator.occupancy import Acked, Leftover, blocked_indexes, leftovers_of, released_ids, unit_blocked
from corral.orchestrator.pass_inputs import (
    addresses_of_leftovers,
    carried_addresses,
    dependencies_wait_of,
    has_changes,
    sidekicks_by_primary,
    slot_view,
    unit_members,
    view_of,
)
from corral.orchestrator.pass_load import claim_rest, rules_of
from corral.orchestrator.plans import Plan
from corral.orchestrator.reconciling import HostView, SlotView, reconcile
from corral.orchestrator.scheduling import HostLoad
from corral.orchestrator.sidekicks import PrimaryPlacement, primary_placement
from corral.orchestrator.upgrade_steps import UpgradePass, upgrade_pass


@dataclass(frozen=True)
class ServicePlan:
    """One service's part of the pass."""

    service: Service  # as planned from (its stored state before the pass)
    plan: Plan  # its reconcile plan, new slots named by generation beside retired ones
    upgrade: UpgradePass  # its upgrade, rollback or restart step (`step`, `start_held`, `restart`)
    reason: str  # why indexes stay unplaced ("" when none)

    @property
    def changed(self) -> bool:
        """Something of the service is stored (its slots, or its upgrade or restart step)."""
        return has_changes(self.plan) or self.upgrade.changed or bool(self.upgrade.start_held)


@dataclass(frozen=True)
class EnvironmentPlan:
    """Everything one pass decides for an environment, stored in one transaction (StackStore.apply_environment_plan)."""

    environment_id: str
    services: tuple[ServicePlan, ...] = ()  # in the order planned (primaries first)
    reasons: Mapping[str, str] = dataclasses.field(default_factory=dict)  # service id -> its new reason (changed only)
    retained: Mapping[str, str] = dataclasses.field(default_factory=dict)  # new slot id -> address it keeps
    forget: tuple[str, ...] = ()  # stored leftovers released: their indexes are free again
    changed: tuple[str, ...] = ()  # ids of the services whose stored state this plan changes (for their events)
    # ids of the services this pass planned nothing for (or left out): quiet until something of theirs changes
    quiet: tuple[str, ...] = ()
    health_history: Mapping[str, Mapping[int, Replacement]] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # worth a line in the server's log

    @property
    def writes(self) -> bool:
        """The plan stores something (else applying it opens no transaction)."""
        return bool(self.reasons or self.forget or any(s.changed for s in self.services))


def environment_leftovers(
    stored: Sequence[LeftoverRecord],
    slots: Sequence[SlotRecord],
    by_host: Mapping[str, Mapping[str, ObservedContainer]],
    acked: Acked,
) -> list[Leftover]:
    """The environment's old containers that may still run: stored leftovers, and retired slots that stop-first
    upgrades stopped."""
    stopped = [r for r in slots if r.retired and not r.running]
    return leftovers_of(stored, stopped, by_host, acked)


def plan_environment(
    environment_id: str,
    *,
    hosts: Sequence[HostView],
    image_reports: Sequence[Mapping[str, tuple[str, ...]]],
    services: Sequence[Service],
    slots: Sequence[SlotRecord],
    observed: Mapping[str, ObservedContainer],
    by_host: Mapping[str, Mapping[str, ObservedContainer]],
    stored_leftovers: Sequence[LeftoverRecord],
    leftovers: Sequence[Leftover],
    acked: Acked,
    health_history: Mapping[str, Mapping[int, Replacement]],
    now: float,
    new_id: Callable[[], str],
    view_slot: Callable[[SlotRecord, ObservedContainer | None, ServiceSpec | None], SlotView] = slot_view,
    unchanged: Collection[str] = frozenset(),
) -> EnvironmentPlan:
    """The pass's plan for one environment. `slots` are the environment's, `observed` maps slot id -> the container
    reported for it on its host, `by_host` host id -> slot id -> the container reported there, `leftovers` come from
    `environment_leftovers` and `acked` answers for slots this pass stops. `view_slot` is `slot_view` or one that
    returns the same views (the server's keeps those of slots that did not change between passes). `unchanged`:
    services whose inputs did not change since a pass that left them `quiet` (the module's docstring)."""
    host_map = {h.id: h for h in hosts}
    forget = released_ids(leftovers, host_map, {item.slot_id for item in stored_leftovers})
    blocked = blocked_indexes(leftovers, host_map)
    slots_by_service: defaultdict[str, list[SlotRecord]] = defaultdict(list)
    for record in slots:
        slots_by_service[record.service_id].append(record)
    specs = {s.id: s.spec for s in services}
    views = {r.slot.id: view_slot(r, observed.get(r.slot.id), specs.get(r.service_id)) for r in slots}
    reasons: dict[str, str] = {}
    retained: dict[str, str] = {}
    changed: list[str] = []
    history: dict[str, Mapping[int, Replacement]] = {}
    planned: list[ServicePlan] = []
    warnings: list[str] = []
    placements: dict[tuple[str, str], PrimaryPlacement] = {}  # (stack id, primary) -> its planned slots
    # one running host load for the pass (scheduling.py `HostLoad.shared`): each service releases its own slots
    # from it instead of rebuilding it from every other slot
    load = HostLoad.shared(hosts, (rules_of(s.spec, s.stack) for s in services))
    sidekicks = sidekicks_by_primary(services)
    for view in views.values():
        load.claim_view(view)
    skipped = _skipped(services, unchanged, sidekicks, blocked, health_history)
    quiet: list[str] = sorted(skipped)
    for service in sorted(services, key=lambda s: s.spec.sidekick_of is not None):  # primaries first
        if service.id in skipped:
            continue
        records = slots_by_service[service.id]
        upgrade = upgrade_pass(service, records, observed, now, blocked.get((service.stack, service.name), {}))
        if upgrade.warning:
            warnings.append(upgrade.warning)
        stopping = [  # retired by this very pass and stopped: their indexes wait for them
            r
            for r in records
            if r.slot.id in upgrade.retired and r.slot.id not in upgrade.retired_running and r.running
        ]
        if stopping:
            fresh = blocked_indexes(leftovers_of([], stopping, by_host, acked), host_map)
            for key, indexes in fresh.items():
                blocked[key] = {**indexes, **blocked.get(key, {})}
        own = [views[r.slot.id] for r in records if r.slot.id not in upgrade.retired]
        before = [views[r.slot.id] for r in records if r.slot.id in views]
        for view in before:
            load.release_view(view)
        in_unit = bool(service.spec.sidekicks) or service.spec.sidekick_of is not None
        others: list[SlotView] = []
        shared: frozenset[tuple[int, str]] = frozenset()
        if in_unit:  # a sidekick unit's reconcile builds a load of its own
            others = [
                v for sid, v in views.items() if v.slot.service != service.name or v.slot.stack != service.stack
            ] + [views[sid] for sid in upgrade.retired_running if sid in views]
        else:
            # an LB's fixed host ports are forwarded by its agent (network/lb_ports.py), not bound by Docker: a
            # start-first upgrade's new container shares them with the old one on the same host
            shared = service.spec.launch.published_ports() if service.spec.lb_config else frozenset()
            for sid in upgrade.retired_running:
                if sid in views:
                    view = views[sid]
                    load.claim_view(dataclasses.replace(view, published_ports=view.published_ports - shared))
        wait = dependencies_wait_of(service, services, slots_by_service, observed)
        plan = reconcile(
            dataclasses.replace(service.spec, scale=service.scale),
            stack=service.stack,
            environment_id=environment_id,
            slots=own,
            hosts=hosts,
            other_slots=others,
            load=None if in_unit else load,
            dependencies_ready=wait is None,
            waiting_for=wait,
            new_id=new_id,
            now=now,
            image_archs=archs_of_image(service.spec.launch.image, image_reports),
            accepted_hashes=upgrade.accepted_hashes,
            sidekicks=sidekicks.get((service.stack_id, service.name), []),
            primary=placements.get((service.stack_id, service.spec.sidekick_of or "")),
            health_history=health_history.get(service.id, {}),
            blocked=unit_blocked(blocked, service.stack, unit_members(service, sidekicks)),
        )
        history[service.id] = record_replacements(health_history.get(service.id, {}), own, plan, now)
        plan = upgrade.name_new_slots(plan)
        if service.spec.sidekicks:
            placements[(service.stack_id, service.name)] = primary_placement(service.name, own, plan)
        reason = group_unplaced(plan.unplaced)
        if reason != service.reason:
            reasons[service.id] = reason
        if upgrade.changed or has_changes(plan):
            changed.append(service.id)
        if has_changes(plan):
            retained.update(carried_addresses(service, records, plan))
            if service.spec.retain_ip:  # a slot that moved in two steps (stopped, then placed) keeps it too
                retained.update(addresses_of_leftovers(stored_leftovers, service, plan))
            # later services in this pass see this service's new slots (ports, spread)
            for slot in [*plan.place, *(new for _, new in plan.replace)]:
                views[slot.id] = view_of(slot, None, service.spec)
            for slot_id in [*plan.remove, *(old for old, _ in plan.replace)]:
                views.pop(slot_id, None)
        if in_unit:  # the load holds the unit's slots as they are now
            for record in records:
                if record.slot.id in views:
                    load.claim_view(views[record.slot.id])
            for slot in [*plan.place, *(new for _, new in plan.replace)]:
                load.claim_view(views[slot.id])
        else:  # the plan claimed the slots it keeps; retired ones and random host ports count too
            claim_rest(load, service.spec, before, upgrade.retired - upgrade.retired_running, plan)
            for sid in upgrade.retired_running if shared else ():  # the next services see them taken
                if sid in views and views[sid].slot.host_id in load.hosts:
                    load.used[views[sid].slot.host_id].update(views[sid].published_ports & shared)
        planned.append(ServicePlan(service=service, plan=plan, upgrade=upgrade, reason=reason))
        if may_skip(service, blocked, history[service.id]) and not (
            upgrade.changed or upgrade.start_held or has_changes(plan) or plan.unplaced or reason or wait
        ):
            quiet.append(service.id)
    changed.extend(s.id for s in services if s.id in reasons and s.id not in changed)
    return EnvironmentPlan(
        environment_id=environment_id,
        services=tuple(planned),
        reasons=reasons,
        retained=retained,
        forget=tuple(forget),
        changed=tuple(changed),
        quiet=tuple(quiet),
        health_history=history,
        warnings=tuple(warnings),
    )


def may_skip(
    service: Service, blocked: Mapping[tuple[str, str], Mapping[int, object]], history: Mapping[int, Replacement]
) -> bool:
    """Whether planning the service again over unchanged inputs gives an empty plan whatever the time: no time-driven
    rule runs for it (an upgrade's batches, a restart, a rollback, a health replacement's backoff), nothing is
    unplaced (another service's removal may make room) and no old container holds one of its indexes."""
    settled = service.state == ServiceState.ACTIVE.value and not service.upgrade and not service.reason
    return settled and not history and not blocked.get((service.stack, service.name))


def _skipped(
    services: Sequence[Service],
    unchanged: Collection[str],
    sidekicks: dict[tuple[str, str], list[ServiceSpec]],
    blocked: Mapping[tuple[str, str], Mapping[int, object]],
    health_history: Mapping[str, Mapping[int, Replacement]],
) -> frozenset[str]:
    """Of the `unchanged` services, those the pass leaves out: a sidekick unit only as a whole."""
    if not unchanged:
        return frozenset()
    candidates = {s.id for s in services if s.id in unchanged and may_skip(s, blocked, health_history.get(s.id, {}))}
    by_name = {(s.stack_id, s.name): s.id for s in services}
    skipped = set()
    for service in services:
        if service.id not in candidates:
            continue
        members = [by_name.get((service.stack_id, name)) for name in unit_members(service, sidekicks)]
        if all(member in candidates for member in members if member is not None):
            skipped.add(service.id)
    return frozenset(skipped)
