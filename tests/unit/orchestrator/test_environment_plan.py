"""`plan_environment` (orchestrator/environment_plan.py) as Hypothesis properties over random environments: hosts in
any state, services at any scale (some upgrading, stop-first or start-first), slots on any host, with the old or the
current config, running or not, reported or not.

- pure: the same inputs give the same plan, and the inputs are left as they were;
- never two slots wanted running for one (service, index) after the plan is applied, except beside a retired slot
  that a start-first upgrade keeps running (start-first runs both by definition);
- every service of the environment is planned once and its reason is the plan's grouped unplaced indexes: stored
  when it differs from the service's reason, left out when it does not;
- incremental: leaving out services a pass found quiet plans every other service exactly as a full pass does, and a
  quiet service stays quiet while only other services change.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.entities import HostState, ObservedContainer
from corral.model.reasons import group_unplaced
from corral.model.service_state import ServiceState
from corral.model.stack import ContainerSlot, LeftoverRecord, Service, SlotRecord
from corral.orchestrator.environment_plan import EnvironmentPlan, environment_leftovers, plan_environment
from corral.orchestrator.reconciling import HostView

from .harness import ENV, STACK, service

STATES = [HostState.ACTIVE, HostState.ACTIVE, HostState.RECONNECTING, HostState.DISCONNECTED]
OLD_IMAGE, NEW_IMAGE = "nginx:1", "nginx:2"


@st.composite
def environments(draw: st.DrawFn) -> dict[str, Any]:
    hosts = [
        HostView(id=f"h{i}", name=f"host{i}", state=draw(st.sampled_from(STATES)), arch="x86_64")
        for i in range(draw(st.integers(0, 3)))
    ]
    services: list[Service] = []
    slots: list[SlotRecord] = []
    observed: dict[str, ObservedContainer] = {}
    by_host: dict[str, dict[str, ObservedContainer]] = defaultdict(dict)
    ids = itertools.count(1)
    for position in range(draw(st.integers(1, 3))):
        name = f"s{position}"
        ports = draw(st.sampled_from([(), (8080,)]))
        new = service(draw(st.integers(0, 4)), name=name, image=NEW_IMAGE, ports=ports)
        old = dataclasses.replace(new, launch=dataclasses.replace(new.launch, image=OLD_IMAGE))
        upgrading = draw(st.booleans())
        start_first = draw(st.booleans())
        state, upgrade = ServiceState.ACTIVE.value, {}
        if upgrading:
            state = ServiceState.UPGRADING.value
            upgrade = {
                "strategy": {"batch_size": draw(st.integers(1, 2)), "interval_ms": 0, "start_first": start_first},
                "previous_spec": old.to_dict(),
                "previous_scale": new.scale,
                "batch_at": 0.0,
                "reason": "",
            }
        reason = draw(st.sampled_from(["", "#1: no hosts in the environment"]))
        svc = Service(f"svc{position}", "stack1", ENV, STACK, name, new, new.scale, position, reason, state, 0, upgrade)
        services.append(svc)
        if not hosts:
            continue
        for index in sorted(draw(st.sets(st.integers(1, 5), max_size=4))):
            host = draw(st.sampled_from(hosts))
            retired = upgrading and draw(st.booleans())
            spec = old if (retired or (upgrading and draw(st.booleans())) or draw(st.booleans())) else new
            running = (start_first or not retired) and draw(st.booleans())
            slot = ContainerSlot(
                f"c{next(ids)}", ENV, STACK, name, index, host.id, spec.launch.config_hash(), generation=0
            )
            slots.append(SlotRecord(slot, "stack1", svc.id, running=running, retired=retired))
            if retired and upgrading and draw(st.booleans()):  # its replacement, placed by an earlier batch
                fresh = ContainerSlot(
                    f"c{next(ids)}", ENV, STACK, name, index, host.id, new.launch.config_hash(), generation=1
                )
                slots.append(SlotRecord(fresh, "stack1", svc.id, running=True))
            reported = draw(st.sampled_from([None, "running", "exited"]))
            if reported is not None:
                labels = {"io.corral.container": slot.id, "io.corral.config-hash": slot.config_hash}
                container = ObservedContainer(f"d{slot.id}", slot.name, spec.launch.image, reported, labels=labels)
                observed[slot.id] = container
                by_host[host.id][slot.id] = container
    stored = [
        LeftoverRecord(f"gone{i}", ENV, STACK, "s0", i, hosts[0].id, f"{STACK}-s0-{i}", 0.0)
        for i in range(draw(st.integers(0, 2)) if hosts else 0)
    ]
    return {
        "hosts": hosts,
        "services": services,
        "slots": slots,
        "observed": observed,
        "by_host": dict(by_host),
        "stored": stored,
        "acked": draw(st.booleans()),
        "now": 1000.0,
    }


def plan_of(world: dict[str, Any], unchanged: frozenset[str] = frozenset()) -> EnvironmentPlan:
    acked = world["acked"]
    leftovers = environment_leftovers(world["stored"], world["slots"], world["by_host"], lambda h, s: acked)
    counter = itertools.count(1)
    return plan_environment(
        ENV,
        hosts=world["hosts"],
        image_reports=[],
        services=world["services"],
        slots=world["slots"],
        observed=world["observed"],
        by_host=world["by_host"],
        stored_leftovers=world["stored"],
        leftovers=leftovers,
        acked=lambda h, s: acked,
        health_history={},
        now=world["now"],
        new_id=lambda: f"new{next(counter)}",
        unchanged=unchanged,
    )


def after(world: dict[str, Any], plan: EnvironmentPlan) -> list[SlotRecord]:
    """The environment's slots once the plan is stored (as store/plan_writes.py writes it)."""
    slots = {r.slot.id: r for r in world["slots"]}
    for part in plan.services:
        upgrade, changes = part.upgrade, part.plan
        step = upgrade.step
        for sid in upgrade.start_held:
            slots[sid] = dataclasses.replace(slots[sid], running=True)
        if step is not None:
            for sid in step.retire:
                slots[sid] = dataclasses.replace(slots[sid], retired=True)
            for sid in step.stop:
                slots[sid] = dataclasses.replace(slots[sid], running=False)
        for sid in [*changes.remove, *(old for old, _ in changes.replace)]:
            del slots[sid]
        for new in [*changes.place, *(new for _, new in changes.replace)]:
            assert new.id not in slots
            slots[new.id] = SlotRecord(new, "stack1", part.service.id, running=True)
        for updated in changes.update:
            slots[updated.id] = dataclasses.replace(slots[updated.id], slot=updated)
    return list(slots.values())


@settings(max_examples=300, deadline=None)
@given(environments())
def test_the_same_inputs_give_the_same_plan(world: dict[str, Any]) -> None:
    before = copy.deepcopy(world)
    first = plan_of(world)
    assert world == before  # the inputs are left as they were
    assert plan_of(world) == first


@settings(max_examples=300, deadline=None)
@given(environments())
def test_never_two_slots_wanted_for_one_index_outside_start_first(world: dict[str, Any]) -> None:
    plan = plan_of(world)
    start_first = {s.name for s in world["services"] if s.upgrade.get("strategy", {}).get("start_first") and s.upgrade}
    wanted: defaultdict[tuple[str, int], list[SlotRecord]] = defaultdict(list)
    current: defaultdict[tuple[str, int], list[str]] = defaultdict(list)
    for record in after(world, plan):
        if not record.retired:
            current[(record.slot.service, record.slot.index)].append(record.slot.id)
        if record.running:
            wanted[(record.slot.service, record.slot.index)].append(record)
    assert all(len(found) == 1 for found in current.values()), current
    for (name, _), found in wanted.items():
        if len(found) > 1:
            assert name in start_first and sum(not r.retired for r in found) == 1, found


@settings(max_examples=300, deadline=None)
@given(environments())
def test_every_service_gets_its_reason_or_keeps_the_one_it_has(world: dict[str, Any]) -> None:
    plan = plan_of(world)
    assert sorted(p.service.id for p in plan.services) == sorted(s.id for s in world["services"])
    for part in plan.services:
        assert part.reason == group_unplaced(part.plan.unplaced)
        if part.reason != part.service.reason:
            assert plan.reasons[part.service.id] == part.reason
            assert part.service.id in plan.changed
        else:
            assert part.service.id not in plan.reasons
    assert len(set(plan.changed)) == len(plan.changed)
    assert plan.writes == bool(plan.reasons or plan.forget or any(p.changed for p in plan.services))


@settings(max_examples=300, deadline=None)
@given(environments(), st.data())
def test_leaving_out_quiet_services_plans_the_others_as_a_full_pass(world: dict[str, Any], data: st.DataObject) -> None:
    full = plan_of(world)
    hint = frozenset(data.draw(st.sets(st.sampled_from(full.quiet))) if full.quiet else ())
    part = plan_of(world, unchanged=hint)
    left_out = {s.id for s in world["services"]} - {p.service.id for p in part.services}
    assert left_out == set(hint)  # quiet ones are all skippable (no unit here)
    assert part.services == tuple(p for p in full.services if p.service.id not in hint)
    assert all(p.plan.empty and not p.upgrade.changed for p in full.services if p.service.id in hint)
    assert (part.reasons, part.retained, part.forget, part.changed) == (
        full.reasons,
        full.retained,
        full.forget,
        full.changed,
    )
    assert sorted(part.quiet) == sorted(full.quiet)


@settings(max_examples=300, deadline=None)
@given(environments())
def test_a_quiet_service_stays_quiet_while_only_others_change(world: dict[str, Any]) -> None:
    plan = plan_of(world)
    slots = after(world, plan)
    kept = {r.slot.id for r in slots}
    observed = {sid: c for sid, c in world["observed"].items() if sid in kept}
    by_host = {h: {sid: c for sid, c in found.items() if sid in kept} for h, found in world["by_host"].items()}
    services = [
        dataclasses.replace(s, reason=plan.reasons.get(s.id, s.reason)) if s.id not in plan.quiet else s
        for s in world["services"]
    ]
    again = plan_of({**world, "slots": slots, "observed": observed, "by_host": by_host, "services": services})
    parts = {p.service.id: p for p in again.services}
    for service_id in plan.quiet:
        assert parts[service_id].plan.empty and not parts[service_id].upgrade.changed, parts[service_id]
        assert service_id in again.quiet
