"""Counting invariants of the reconciler as Hypothesis properties (Nomad style), over arbitrary and clean worlds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from corral.model.stack import LaunchConfig, ServiceSpec
from corral.orchestrator.reconciling import HostView, Plan, SlotView

from .harness import (
    ACTIVE,
    DISCONNECTED,
    RECONNECTING,
    active_hosts,
    after,
    hosts,
    ids,
    leftovers_of,
    other_slots,
    per_host,
    run,
    service,
    slot,
)

IMAGES = ("nginx:1", "nginx:2")
PORT_SETS: tuple[tuple[int, ...], ...] = ((), (80,), (80, 443))
VARIANTS = [service(1, image=image, ports=ports) for image in IMAGES for ports in PORT_SETS]
LAUNCH_OF = {v.launch.config_hash(): v.launch for v in VARIANTS}
STAYING = {ACTIVE, RECONNECTING}


@dataclass
class World:
    spec: ServiceSpec
    slots: list[SlotView]
    hosts: list[HostView]
    others: list[SlotView]
    ready: bool
    launch_of: dict[str, LaunchConfig]

    def plan(
        self, slots: list[SlotView] | None = None, blocked: dict[int, str] | None = None, *, id_prefix: str = "new"
    ) -> Plan:
        chosen = self.slots if slots is None else slots
        new_id = ids(id_prefix)
        return run(self.spec, chosen, self.hosts, others=self.others, ready=self.ready, blocked=blocked, new_id=new_id)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """Anything goes: duplicate and out-of-range indexes, vanished hosts, old configs, odd agent reports."""
    host_views = hosts(
        *draw(st.lists(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, RECONNECTING, DISCONNECTED]), max_size=7))
    )
    host_ids = [h.id for h in host_views] + ["gone"]
    spec = service(
        draw(st.integers(0, 10)), image=draw(st.sampled_from(IMAGES)), ports=draw(st.sampled_from(PORT_SETS))
    )
    slots = []
    for n in range(draw(st.integers(0, 12))):
        s = slot(draw(st.integers(0, 12)), draw(st.sampled_from(host_ids)), draw(st.sampled_from(VARIANTS)), id=f"s{n}")
        slots.append(
            SlotView(
                s,
                observed_state=draw(st.sampled_from([None, "running", "exited"])),
                observed_hash=draw(st.sampled_from([None, s.config_hash, "stale"])),
                published_ports=LAUNCH_OF[s.config_hash].published_ports(),
            )
        )
    others = []
    for name, ports in (("proxy", (80,)), ("db", ()), ("admin", (8080,))):
        others += other_slots(service(name=name, ports=ports), draw(st.lists(st.sampled_from(host_ids), max_size=4)))
    return World(spec, slots, host_views, others, draw(st.booleans()), LAUNCH_OF)


def holders(plan_input: list[SlotView]) -> set[str]:
    return {v.slot.id for v in plan_input if v.observed_state == "running" and v.observed_hash == v.slot.config_hash}


@given(worlds())
def test_every_slot_lands_in_exactly_one_bucket(world: World) -> None:
    plan = world.plan()
    buckets = Counter([*plan.keep, *(s.id for s in plan.update), *plan.remove, *(old for old, _ in plan.replace)])
    assert buckets == Counter(v.slot.id for v in world.slots)
    new_ids = [s.id for s in plan.place] + [new.id for _, new in plan.replace]
    assert len(set(new_ids)) == len(new_ids) and not set(new_ids) & set(buckets)


@given(worlds())
def test_indexes_are_unique_in_range_and_each_is_covered_or_explained(world: World) -> None:
    plan = world.plan()
    final = after(world.slots, plan, world.launch_of)
    indexes = [v.slot.index for v in final]
    assert len(indexes) == len(set(indexes)), "never more than one slot per index"
    assert set(indexes) <= set(range(1, world.spec.scale + 1))
    unplaced = [i for i, _ in plan.unplaced]
    assert len(unplaced) == len(set(unplaced)) and all(reason for _, reason in plan.unplaced)
    assert set(indexes) | set(unplaced) == set(range(1, world.spec.scale + 1))


@given(worlds())
def test_new_slots_go_to_active_hosts_with_the_current_config(world: World) -> None:
    plan = world.plan()
    states = {h.id: h.state for h in world.hosts}
    want = world.spec.launch.config_hash()
    for s in [*plan.place, *(new for _, new in plan.replace)]:
        assert states[s.host_id] is ACTIVE and s.config_hash == want
    assert all(s.config_hash == want for s in plan.update)
    if not world.ready:
        assert not (plan.place or plan.replace or plan.update)


@given(worlds())
def test_applying_a_plan_and_reconciling_again_changes_nothing(world: World) -> None:
    plan = world.plan()
    blocked = leftovers_of(world.slots, plan, world.hosts)
    # the second pass names its new slots apart from the first's
    again = world.plan(after(world.slots, plan, world.launch_of), blocked, id_prefix="again")
    # nothing changes, but an index that found no host may take the room a slot that now waits had claimed: placed,
    # or moved off the host that does not answer, where its slot was kept
    assert not (again.remove or again.update), again
    taken = {s.index for s in again.place} | {new.index for _, new in again.replace}
    assert taken <= {i for i, _ in plan.unplaced} - set(blocked), again
    assert [i for i, _ in again.unplaced] == [i for i, _ in plan.unplaced if i not in taken]


@given(worlds())
def test_no_two_slots_on_one_host_publish_the_same_port(world: World) -> None:
    if not world.ready:
        return  # nothing changes while dependencies are not ready: old clashes stay as they were
    final = after(world.slots, world.plan(), world.launch_of)
    states = {h.id: h.state for h in world.hosts}
    running_holders = holders(world.slots)
    everyone = final + world.others
    for mine in final:
        if mine.slot.id in running_holders or states.get(mine.slot.host_id) not in STAYING:
            continue  # a running holder keeps its port; lost hosts take nothing new
        for other in everyone:
            if other.slot.id != mine.slot.id and other.slot.host_id == mine.slot.host_id:
                assert not mine.published_ports & other.published_ports, (mine, other)


@given(
    st.integers(1, 8),
    st.lists(st.integers(0, 15), min_size=1, max_size=4),
    st.lists(st.integers(0, 7), max_size=10),
)
def test_spread_on_enough_hosts_keeps_per_host_counts_within_one(host_count, scales, db_hosts) -> None:
    host_views = active_hosts(host_count)
    others = other_slots(service(name="db"), [host_views[i % host_count].id for i in db_hosts])
    slots: list[SlotView] = []
    for scale in sorted(scales):  # scaling up step by step stays balanced
        spec = service(scale)
        plan = run(spec, slots, host_views, others=others)
        slots = after(slots, plan, LAUNCH_OF)
        assert len(slots) == scale and not plan.unplaced
        assert sorted(v.slot.index for v in slots) == list(range(1, scale + 1))
        counts = [per_host(slots).get(h.id, 0) for h in host_views]
        assert max(counts) - min(counts) <= 1


@given(st.integers(0, 8), st.integers(0, 4))
def test_with_ports_each_host_takes_one_and_the_rest_is_explained(scale, extra_hosts) -> None:
    host_views = active_hosts(max(1, scale - 2 + extra_hosts))
    plan = run(service(scale, ports=[80]), [], host_views)
    assert max(per_host(plan.place).values(), default=0) <= 1
    assert len(plan.place) == min(scale, len(host_views))
    assert [i for i, _ in plan.unplaced] == list(range(len(plan.place) + 1, scale + 1))


@given(worlds())
def test_with_an_active_host_and_no_ports_every_index_is_filled(world: World) -> None:
    spec = service(world.spec.scale, image=world.spec.launch.image)
    if not world.ready or not any(h.state is ACTIVE for h in world.hosts):
        return
    final = after(world.slots, run(spec, world.slots, world.hosts, others=world.others), world.launch_of)
    assert sorted(v.slot.index for v in final) == list(range(1, spec.scale + 1))
