"""A pinned (standalone, `corral run`) container: placed on its host only, never moved off it — not when the host
is lost, evacuated or its port clashes — and unplaced with the reason when its host cannot take it or is gone."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.entities import HostState
from corral.model.stack import ServiceSpec
from corral.orchestrator.reconciling import HostView

from .harness import ACTIVE, DISCONNECTED, RECONNECTING, other_slots, run, service, slot, view


def pinned(spec: ServiceSpec, host_id: str) -> ServiceSpec:
    return dataclasses.replace(spec, pinned_host=host_id)


def host(i: int, state: HostState = ACTIVE, **fields: object) -> HostView:
    return HostView(id=f"h{i:02d}", name=f"host{i:02d}", state=state, arch="x86_64", **fields)  # type: ignore[arg-type]


def test_it_is_placed_on_its_host_even_when_others_are_emptier() -> None:
    spec = pinned(service(1), "h03")
    busy = other_slots(service(3, name="other"), ["h03", "h03", "h03"])
    plan = run(spec, [], [host(1), host(2), host(3)], others=busy)
    assert [(s.index, s.host_id) for s in plan.place] == [(1, "h03")]


def test_a_lost_or_evacuated_host_keeps_it_with_the_reason() -> None:
    spec = pinned(service(1), "h01")
    mine = view(slot(1, "h01", spec), {spec.launch.config_hash(): spec.launch}, observed_state="running")
    reconnecting = run(spec, [mine], [host(1, RECONNECTING), host(2)])  # it stays, as any service's would
    assert reconnecting.keep == ("s1",) and not reconnecting.place and not reconnecting.unplaced
    for lost in (host(1, DISCONNECTED), host(1, evacuating=True)):
        plan = run(spec, [mine], [lost, host(2)])
        assert not plan.place and not plan.replace and not plan.remove, lost
        assert plan.keep == ("s1",)
        [(index, reason)] = plan.unplaced
        assert index == 1 and "not moved to another host" in reason and "host01" in reason


def test_a_port_clash_on_its_host_does_not_move_it() -> None:
    spec = pinned(service(1, ports=[80]), "h01")
    mine = view(slot(1, "h01", spec), {spec.launch.config_hash(): spec.launch})
    holder = other_slots(service(1, name="other", ports=[80]), ["h01"])
    plan = run(spec, [mine], [host(1), host(2)], others=holder)
    assert not plan.place and not plan.replace and plan.keep == ("s1",)


def test_its_host_full_or_gone_leaves_it_unplaced_with_the_reason() -> None:
    spec = pinned(service(1, ports=[80]), "h01")
    taken = run(spec, [], [host(1), host(2)], others=other_slots(service(1, name="other", ports=[80]), ["h01"]))
    assert not taken.place and "its host host01 cannot take it" in taken.unplaced[0][1]
    down = run(spec, [], [host(1, DISCONNECTED), host(2)])
    assert not down.place and "its host host01 is disconnected" in down.unplaced[0][1]
    gone = run(spec, [view(slot(1, "h01", spec), {})], [host(2)])
    assert not gone.place and gone.remove == ("s1",)
    assert "its host h01 was removed; a standalone container is not moved" in gone.unplaced[0][1]


@settings(max_examples=60, deadline=None)
@given(
    states=st.lists(st.sampled_from(list(HostState)), min_size=1, max_size=5),
    target=st.integers(min_value=0, max_value=4),
    placed=st.booleans(),
)
def test_property_a_pinned_container_never_lands_on_another_host(
    states: list[HostState], target: int, placed: bool
) -> None:
    views = [host(i, state) for i, state in enumerate(states, 1)]
    pin = f"h{target % len(states) + 1:02d}"
    spec = pinned(service(1), pin)
    mine = [view(slot(1, pin, spec), {spec.launch.config_hash(): spec.launch})] if placed else []
    plan = run(spec, mine, views)
    assert all(s.host_id == pin for s in plan.place) and not plan.replace
    assert plan.place or plan.keep or plan.unplaced
