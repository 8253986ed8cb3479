"""Hypothesis properties of placement under scheduling rules: hard rules are never violated, every desired index is
placed or explained, a second reconcile changes nothing, spread stays within one, and global services run once on
every matching host."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from corral.model.entities import normalise_arch
from corral.model.stack import ServiceSpec
from corral.orchestrator.reconciling import HostView, Plan, SlotView
from corral.orchestrator.rules import Kind, parse_rules, system_labels
from corral.orchestrator.scheduling import takes_new

from .harness import ACTIVE, DISCONNECTED, RECONNECTING, STACK, after, other_slots, per_host, run, service

A = "io.rancher.scheduler.affinity:"
SPREAD = "io.rancher.stack_service.name=$${stack_name}/$${service_name}"
MIB = 2**20
RULES = {
    "zone": (A + "host_label", "zone=eu"),
    "zone_soft": (A + "host_label_soft", "zone=us"),
    "no_hdd": (A + "host_label_ne", "disk=hdd"),
    "spread": (A + "container_label_ne", SPREAD),
    "spread_soft": (A + "container_label_soft_ne", SPREAD),
    "near_db": (A + "container_label", "role=db"),
    "not_cache": (A + "container_ne", f"{STACK}-cache-1"),
}
DB = service(name="db", labels={"role": "db"}, mem=256 * MIB)
CACHE = service(name="cache", ports=(6379,), cpu=0.5)


@st.composite
def host_lists(draw: st.DrawFn, *, conditions: bool = True) -> list[HostView]:
    views = []
    for i in range(1, draw(st.integers(0, 7)) + 1):
        labels = {}
        for key, values in (("zone", ("eu", "us")), ("disk", ("ssd", "hdd"))):
            value = draw(st.sampled_from((None, *values)))
            if value is not None:
                labels[key] = value
        views.append(
            HostView(
                id=f"h{i:02d}",
                name=f"host{i:02d}",
                state=draw(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, RECONNECTING, DISCONNECTED]))
                if conditions
                else ACTIVE,
                labels=labels,
                arch=draw(st.sampled_from(["x86_64", "aarch64"])) if conditions else "x86_64",
                schedulable=draw(st.sampled_from([True, True, False])) if conditions else True,
                evacuating=draw(st.sampled_from([False, False, True])) if conditions else False,
                cpus=draw(st.sampled_from([0.0, 1.0, 4.0])),
                memory_bytes=draw(st.sampled_from([0, 512 * MIB, 2048 * MIB])),
            )
        )
    return views


@dataclass
class World:
    spec: ServiceSpec
    hosts: list[HostView]
    others: list[SlotView]
    archs: frozenset[str] | None

    def plan(self, slots: list[SlotView]) -> Plan:
        return run(self.spec, slots, self.hosts, others=self.others, image_archs=self.archs)


@st.composite
def worlds(draw: st.DrawFn, *, global_: bool = False) -> World:
    host_views = draw(host_lists())
    ids = [h.id for h in host_views]
    labels = dict(RULES[name] for name in draw(st.sets(st.sampled_from(sorted(RULES)), max_size=3)))
    if global_:
        labels["io.rancher.scheduler.global"] = "true"
    spec = service(
        draw(st.integers(0, 9)),
        ports=draw(st.sampled_from([(), (80,)])),
        labels=labels,
        mem=draw(st.sampled_from([None, 256 * MIB, 1024 * MIB])),
        cpu=draw(st.sampled_from([None, 0.5, 2.0])),
    )
    others = []
    if ids:
        others += other_slots(DB, draw(st.lists(st.sampled_from(ids), max_size=4)))
        others += other_slots(CACHE, draw(st.lists(st.sampled_from(ids), max_size=2, unique=True)))
    archs = draw(st.sampled_from([None, frozenset({"amd64"}), frozenset({"arm64", "x86_64"})]))
    return World(spec, host_views, others, archs)


def launch_of(spec: ServiceSpec) -> dict[str, object]:
    return {spec.launch.config_hash(): spec.launch}


def check_hard_rules(world: World, final: list[SlotView], new_ids: set[str]) -> None:
    rules = parse_rules(world.spec.launch.labels, stack=STACK, service=world.spec.name)
    hosts = {h.id: h for h in world.hosts}
    everyone = final + world.others
    own_mem, own_cpu = world.spec.mem_reservation_bytes or 0, world.spec.cpu_reservation or 0.0
    mem = Counter({h: n * own_mem for h, n in per_host(final).items()})
    cpu = Counter({h: n * own_cpu for h, n in per_host(final).items()})
    for v in world.others:
        mem[v.slot.host_id] += v.mem_reservation_bytes
        cpu[v.slot.host_id] += v.cpu_reservation
    for mine in final:
        if mine.slot.id not in new_ids:
            continue
        host = hosts[mine.slot.host_id]
        assert takes_new(host)
        assert world.archs is None or normalise_arch(host.arch) in {normalise_arch(a) for a in world.archs}
        assert not own_mem or not host.memory_bytes or mem[host.id] <= host.memory_bytes
        assert not own_cpu or not host.cpus or cpu[host.id] <= host.cpus + 1e-9
        neighbours = [v for v in everyone if v.slot.host_id == host.id and v.slot.id != mine.slot.id]
        assert not (world.spec.launch.published_ports() & frozenset().union(*(v.published_ports for v in neighbours)))
        pairs = Counter(p for v in neighbours for p in (*v.labels, *system_labels(v.slot.stack, v.slot.service)))
        names = Counter(v.slot.name for v in neighbours)
        for rule in rules.hard:
            if rule.kind is Kind.HOST_LABEL:
                assert rule.host_ok(host.labels), (rule, host)
            elif not rules.global_:
                assert rule.containers_ok(pairs, names), (rule, host, neighbours)


@given(worlds())
def test_no_placement_violates_a_hard_rule_and_every_index_is_placed_or_pending(world: World) -> None:
    plan = world.plan([])
    assert len(plan.place) + len(plan.unplaced) == world.spec.scale
    assert sorted([s.index for s in plan.place] + [i for i, _ in plan.unplaced]) == list(range(1, world.spec.scale + 1))
    assert all(reason for _, reason in plan.unplaced)
    final = after([], plan, launch_of(world.spec))  # type: ignore[arg-type]
    check_hard_rules(world, final, {s.id for s in plan.place})


@given(worlds(), st.data())
def test_reconciling_its_own_result_again_is_a_no_op(world: World, data: st.DataObject) -> None:
    slots = after([], world.plan([]), launch_of(world.spec))  # type: ignore[arg-type]
    if data.draw(st.booleans()):  # the agents report them running
        slots = [dataclasses.replace(v, observed_state="running", observed_hash=v.slot.config_hash) for v in slots]
    plan = world.plan(slots)
    again = world.plan(after(slots, plan, launch_of(world.spec)))  # type: ignore[arg-type]
    assert again.empty, again
    assert again.unplaced == plan.unplaced


@given(host_lists(conditions=False), st.lists(st.integers(0, 12), min_size=1, max_size=3), st.booleans())
def test_spread_differs_by_at_most_one_across_equal_matching_hosts(host_views, scales, soft) -> None:  # type: ignore[no-untyped-def]
    labels = dict([RULES["zone"], RULES["spread_soft"]] if soft else [RULES["zone"]])
    host_views = [dataclasses.replace(h, cpus=0.0, memory_bytes=0) for h in host_views]
    matching = [h.id for h in host_views if h.labels.get("zone") == "eu"]
    slots: list[SlotView] = []
    for scale in sorted(scales):
        spec = service(scale, labels=labels)
        plan = run(spec, slots, host_views)
        slots = after(slots, plan, launch_of(spec))  # type: ignore[arg-type]
        counts = per_host(slots)
        assert set(counts) <= set(matching)
        if matching:
            assert len(slots) == scale
            assert max(counts.get(h, 0) for h in matching) - min(counts.get(h, 0) for h in matching) <= 1


@given(worlds(global_=True), st.data())
def test_global_services_run_exactly_once_on_every_matching_host(world: World, data: st.DataObject) -> None:
    spec = dataclasses.replace(world.spec, launch=dataclasses.replace(world.spec.launch, ports=()))
    world = dataclasses.replace(world, spec=spec, others=[], archs=None)
    spec = dataclasses.replace(spec, mem_reservation_bytes=None, cpu_reservation=None)
    world.spec = spec
    slots = after([], world.plan([]), launch_of(spec))  # type: ignore[arg-type]
    rules = parse_rules(spec.launch.labels, stack=STACK, service=spec.name)

    def matching(hosts: list[HostView]) -> set[str]:
        return {h.id for h in hosts if takes_new(h) and all(r.host_ok(h.labels) for r in rules.host_rules)}

    counts = per_host(slots)
    assert set(counts) == matching(world.hosts) and set(counts.values()) <= {1}
    indexes = [v.slot.index for v in slots]
    assert sorted(indexes) == list(range(1, len(indexes) + 1))
    # relabel some hosts: those that stop matching lose their slot, new matches gain one
    relabel = data.draw(
        st.lists(st.sampled_from(["eu", "us", None]), min_size=len(world.hosts), max_size=len(world.hosts))
    )
    world.hosts = [
        dataclasses.replace(h, labels={k: v for k, v in {**h.labels, "zone": z}.items() if v is not None})
        for h, z in zip(world.hosts, relabel, strict=True)
    ]
    slots = after(slots, world.plan(slots), launch_of(spec))  # type: ignore[arg-type]
    counts = per_host(slots)
    hosts = {h.id: h for h in world.hosts}
    assert set(counts.values()) <= {1}
    assert matching(world.hosts) <= set(counts)
    assert all(all(r.host_ok(hosts[h].labels) for r in rules.host_rules) for h in counts)
    assert len({v.slot.index for v in slots}) == len(slots)


@given(worlds(), st.data())
def test_slots_moved_off_lost_or_evacuating_hosts_obey_the_hard_rules(world: World, data: st.DataObject) -> None:
    slots = after([], world.plan([]), launch_of(world.spec))  # type: ignore[arg-type]
    changes = data.draw(
        st.lists(
            st.sampled_from([None, "evacuating", "disconnected"]), min_size=len(world.hosts), max_size=len(world.hosts)
        )
    )
    world.hosts = [
        h
        if c is None
        else dataclasses.replace(h, evacuating=True)
        if c == "evacuating"
        else dataclasses.replace(h, state=DISCONNECTED)
        for h, c in zip(world.hosts, changes, strict=True)
    ]
    plan = world.plan(slots)
    final = after(slots, plan, launch_of(world.spec))  # type: ignore[arg-type]
    check_hard_rules(world, final, {new.id for _, new in plan.replace})
    indexes = {v.slot.index for v in final} | {i for i, _ in plan.unplaced}
    assert indexes == set(range(1, world.spec.scale + 1))
