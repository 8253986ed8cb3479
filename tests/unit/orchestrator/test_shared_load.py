"""A pass over many services with one shared `HostLoad` (incremental: each service's slots released before its
reconcile, its plan's slots claimed after) plans exactly what rebuilding the load from every other slot per service
plans, through scale-ups, scale-downs and held dependencies (Hypothesis)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.stack import ServiceSpec
from corral.orchestrator.reconciling import HostView, SlotView, reconcile
from corral.orchestrator.rules import parse_rules
from corral.orchestrator.scheduling import HostLoad

from .harness import ENV, STACK, after, ids, service
from .test_scheduling_properties import MIB, RULES, host_lists


@st.composite
def service_lists(draw: st.DrawFn) -> list[ServiceSpec]:
    specs = []
    for number in range(draw(st.integers(1, 4))):
        labels = dict(RULES[name] for name in draw(st.sets(st.sampled_from(sorted(RULES)), max_size=2)))
        specs.append(
            service(
                draw(st.integers(0, 6)),
                name=("db", "cache", "web", "api")[number],
                ports=draw(st.sampled_from([(), (80,), (6379,)])),
                labels={**labels, "role": "db"} if number == 0 else labels,
                mem=draw(st.sampled_from([None, 256 * MIB])),
                cpu=draw(st.sampled_from([None, 0.5])),
            )
        )
    return specs


def with_reservations(views: list[SlotView], spec: ServiceSpec) -> list[SlotView]:
    mem, cpu = spec.mem_reservation_bytes or 0, spec.cpu_reservation or 0.0
    return [dataclasses.replace(v, mem_reservation_bytes=mem, cpu_reservation=cpu) for v in views]


@settings(max_examples=60, deadline=None)
@given(host_lists(), service_lists(), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), max_size=3), st.data())
def test_a_shared_load_plans_what_a_rebuilt_load_plans(
    hosts: list[HostView], specs: list[ServiceSpec], rescales: list[tuple[int, int]], data: st.DataObject
) -> None:
    state: dict[str, list[SlotView]] = {s.name: [] for s in specs}
    rules = [parse_rules(s.launch.labels, stack=STACK, service=s.name) for s in specs]
    for round_number in range(1 + len(rescales)):
        if round_number:
            which, scale = rescales[round_number - 1]
            specs[which % len(specs)] = dataclasses.replace(specs[which % len(specs)], scale=scale)
        load = HostLoad.shared(hosts, rules)
        for views in state.values():
            for view in views:
                load.claim_view(view)
        for spec in specs:
            own = state[spec.name]
            others = [v for name, views in state.items() if name != spec.name for v in views]
            ready = data.draw(st.booleans(), label="dependencies ready")
            common = dict(stack=STACK, environment_id=ENV, slots=own, dependencies_ready=ready, now=0.0)
            rebuilt = reconcile(spec, hosts=hosts, other_slots=others, new_id=ids(f"r{round_number}"), **common)  # type: ignore[arg-type]
            for view in own:
                load.release_view(view)
            shared = reconcile(spec, hosts=hosts, other_slots=(), new_id=ids(f"r{round_number}"), load=load, **common)  # type: ignore[arg-type]
            assert shared == rebuilt
            state[spec.name] = with_reservations(after(own, shared, {spec.launch.config_hash(): spec.launch}), spec)


def test_a_shared_load_refuses_sidekick_units() -> None:
    spec = dataclasses.replace(service(1, name="side"), sidekick_of="web")
    with pytest.raises(ValueError, match="sidekick"):
        reconcile(
            spec,
            stack=STACK,
            environment_id=ENV,
            slots=(),
            hosts=(),
            other_slots=(),
            dependencies_ready=True,
            new_id=ids(),
            now=0.0,
            load=HostLoad.shared((), ()),
        )
