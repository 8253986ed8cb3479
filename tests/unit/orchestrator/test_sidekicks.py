"""Sidekick units in the reconciler: the primary is placed for the whole unit, sidekicks mirror its slots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from corral.model.stack import LaunchConfig, ServiceSpec
from corral.orchestrator.plans import Plan
from corral.orchestrator.reconciling import HostView, SlotView, reconcile
from corral.orchestrator.sidekicks import PrimaryPlacement, primary_placement

from .harness import (
    ACTIVE,
    DISCONNECTED,
    ENV,
    RECONNECTING,
    STACK,
    active_hosts,
    after,
    hosts,
    ids,
    leftovers_of,
    other_slots,
    service,
    slot,
    view,
)

GLOBAL = {"io.rancher.scheduler.global": "true"}


def unit(
    scale: int, *, ports: Sequence[int] = (), side_ports: Sequence[int] = (), labels: dict[str, str] | None = None
) -> tuple[ServiceSpec, ServiceSpec]:
    web = dataclasses.replace(service(scale, ports=ports, labels=labels), sidekicks=("data",))
    data = dataclasses.replace(service(scale, name="data", image="busybox", ports=side_ports), sidekick_of="web")
    return web, data


def launches(*specs: ServiceSpec) -> dict[str, LaunchConfig]:
    return {s.launch.config_hash(): s.launch for s in specs}


def run_unit(
    web: ServiceSpec,
    data: ServiceSpec,
    web_slots: Sequence[SlotView],
    data_slots: Sequence[SlotView],
    host_views: Sequence[HostView],
    others: Sequence[SlotView] = (),
    blocked: dict[int, str] | None = None,
) -> tuple[Plan, Plan]:
    """One server pass over the unit: the primary (with the sidekick's slots among the others), then the sidekick.
    `blocked`: the unit's indexes whose old containers may still run (occupancy.py `unit_blocked`)."""
    common = {"stack": STACK, "environment_id": ENV, "hosts": host_views, "dependencies_ready": True, "now": 0.0}
    web_plan = reconcile(
        web,
        slots=web_slots,
        other_slots=[*others, *data_slots],
        new_id=ids("w"),
        sidekicks=[data],
        blocked=blocked,
        **common,
    )
    data_plan = reconcile(
        data,
        slots=data_slots,
        other_slots=[*others, *web_slots],
        new_id=ids("d"),
        primary=primary_placement("web", web_slots, web_plan),
        blocked=blocked,
        **common,
    )
    return web_plan, data_plan


def pairs(slots: Sequence[SlotView]) -> set[tuple[int, str]]:
    return {(v.slot.index, v.slot.host_id) for v in slots}


def test_a_new_unit_lands_together_index_by_index() -> None:
    web, data = unit(3)
    web_plan, data_plan = run_unit(web, data, [], [], active_hosts(3))
    assert {(s.index, s.host_id) for s in web_plan.place} == {(s.index, s.host_id) for s in data_plan.place}
    assert len({s.host_id for s in data_plan.place}) == 3
    assert all(s.service == "data" and s.config_hash == data.launch.config_hash() for s in data_plan.place)


def test_sidekick_moves_with_its_primary_off_a_disconnected_host_and_goes_on_scale_down() -> None:
    web, data = unit(2)
    host_views = hosts(ACTIVE, DISCONNECTED, ACTIVE)
    of = launches(web, data)
    web_slots = [view(slot(1, "h01", web, id="w1"), of), view(slot(2, "h02", web, id="w2"), of)]
    data_slots = [view(slot(1, "h01", data, id="d1"), of), view(slot(2, "h02", data, id="d2"), of)]
    web_plan, data_plan = run_unit(web, data, web_slots, data_slots, host_views)
    assert [(old, new.host_id) for old, new in web_plan.replace] == [("w2", "h03")]
    assert [(old, new.index, new.host_id) for old, new in data_plan.replace] == [("d2", 2, "h03")]
    assert data_plan.keep == ("d1",)

    smaller = dataclasses.replace(web, scale=1)
    web_plan, data_plan = run_unit(smaller, data, web_slots, data_slots, hosts(ACTIVE, ACTIVE))
    assert web_plan.remove == ("w2",) and data_plan.remove == ("d2",)


def test_the_unit_demand_keeps_the_primary_off_hosts_where_a_sidekick_port_is_taken() -> None:
    web, data = unit(2, ports=[80], side_ports=[8080])
    host_views = active_hosts(3)
    others = other_slots(service(name="proxy", ports=[8080]), ["h01"])
    web_plan, data_plan = run_unit(web, data, [], [], host_views, others)
    assert {s.host_id for s in web_plan.place} == {"h02", "h03"}
    assert {s.host_id for s in data_plan.place} == {"h02", "h03"}

    web_plan, data_plan = run_unit(dataclasses.replace(web, scale=3), data, [], [], host_views, others)
    assert [i for i, _ in web_plan.unplaced] == [3]
    assert "8080/tcp" in web_plan.unplaced[0][1]
    assert data_plan.unplaced == ((3, f"its primary web: {web_plan.unplaced[0][1]}"),)


def test_reservations_of_the_whole_unit_must_fit_one_host() -> None:
    web, data = unit(1)
    web = dataclasses.replace(web, mem_reservation_bytes=600 * 2**20)
    data = dataclasses.replace(data, mem_reservation_bytes=600 * 2**20)
    small = [dataclasses.replace(h, memory_bytes=2**30) for h in active_hosts(2)]
    web_plan, data_plan = run_unit(web, data, [], [], small)
    assert web_plan.place == () and data_plan.place == ()
    assert "needs 1.17 GiB memory reserved" in web_plan.unplaced[0][1]


def test_a_placed_unit_with_ports_is_stable() -> None:
    """The primary must not see its own sidekicks' ports as a clash on its host."""
    web, data = unit(2, ports=[80], side_ports=[8080])
    of = launches(web, data)
    web_slots = [view(slot(i, f"h0{i}", web, id=f"w{i}"), of, observed_state="running") for i in (1, 2)]
    data_slots = [view(slot(i, f"h0{i}", data, id=f"d{i}"), of) for i in (1, 2)]
    web_plan, data_plan = run_unit(web, data, web_slots, data_slots, active_hosts(2))
    assert web_plan.empty and data_plan.empty, (web_plan, data_plan)


def test_a_global_primary_takes_its_sidekicks_to_every_host() -> None:
    web, data = unit(1, labels=GLOBAL)
    web_plan, data_plan = run_unit(web, data, [], [], active_hosts(4))
    assert {s.host_id for s in data_plan.place} == {"h01", "h02", "h03", "h04"}
    assert {(s.index, s.host_id) for s in web_plan.place} == {(s.index, s.host_id) for s in data_plan.place}


def test_a_changed_sidekick_config_is_updated_in_place_and_without_primary_everything_goes() -> None:
    web, data = unit(1)
    old = dataclasses.replace(data, launch=dataclasses.replace(data.launch, image="busybox:old"))
    of = launches(web, data, old)
    web_slots = [view(slot(1, "h01", web, id="w1"), of)]
    data_slots = [view(slot(1, "h01", old, id="d1"), of)]
    _, data_plan = run_unit(web, data, web_slots, data_slots, active_hosts(2))
    assert [(s.id, s.config_hash) for s in data_plan.update] == [("d1", data.launch.config_hash())]
    alone = reconcile(
        data,
        stack=STACK,
        environment_id=ENV,
        slots=data_slots,
        hosts=active_hosts(2),
        other_slots=[],
        dependencies_ready=True,
        new_id=ids(),
        now=0.0,
        primary=None,
    )
    assert alone.remove == ("d1",) and alone.place == ()


# -- properties


@st.composite
def unit_worlds(draw: st.DrawFn) -> tuple[ServiceSpec, ServiceSpec, list[SlotView], list[SlotView], list[HostView]]:
    """Arbitrary worlds: scattered, duplicated and out-of-range slots of both services, hosts in any state."""
    states = draw(st.lists(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, RECONNECTING, DISCONNECTED]), max_size=6))
    host_views = hosts(*states)
    host_ids = [h.id for h in host_views] + ["gone"]
    is_global = draw(st.booleans())
    web, data = unit(
        draw(st.integers(0, 6)),
        ports=draw(st.sampled_from([(), (80,)])),
        side_ports=draw(st.sampled_from([(), (8080,)])),
        labels=GLOBAL if is_global else None,
    )
    of = launches(web, data)

    def some_slots(spec: ServiceSpec, prefix: str) -> list[SlotView]:
        count = draw(st.integers(0, 8))
        return [
            view(
                slot(draw(st.integers(0, 7)), draw(st.sampled_from(host_ids)), spec, id=f"{prefix}{n}"),
                of,
                observed_state=draw(st.sampled_from([None, "running", "exited"])),
            )
            for n in range(count)
        ]

    # "ow"/"od": the ids a pass gives new slots ("w1", "d1" ...) must never name a slot of the world
    return web, data, some_slots(web, "ow"), some_slots(data, "od"), host_views


@given(unit_worlds())
def test_every_sidekick_slot_shares_host_and_index_with_a_primary_slot_and_reruns_change_nothing(world) -> None:  # type: ignore[no-untyped-def]
    web, data, web_slots, data_slots, host_views = world
    of = launches(web, data)
    web_plan, data_plan = run_unit(web, data, web_slots, data_slots, host_views)
    web_after = after(web_slots, web_plan, of)
    data_after = after(data_slots, data_plan, of)
    assert sorted((v.slot.index, v.slot.host_id) for v in data_after) == sorted(pairs(web_after))
    assert len(data_after) == len(web_after)
    assert all(v.slot.config_hash == data.launch.config_hash() for v in data_after)
    assert [i for i, _ in data_plan.unplaced] == [i for i, _ in web_plan.unplaced]

    blocked = {**leftovers_of(web_slots, web_plan, host_views), **leftovers_of(data_slots, data_plan, host_views)}
    again_web, again_data = run_unit(web, data, web_after, data_after, host_views, blocked=blocked)
    # nothing changes, but an index that found no host may take the room a slot that now waits had claimed: placed,
    # or moved off the host that does not answer, where its slot was kept
    for again, first in ((again_web, web_plan), (again_data, data_plan)):
        assert not (again.remove or again.update), again
        may_move = {i for i, _ in first.unplaced} - set(blocked)
        assert {s.index for s in again.place} | {new.index for _, new in again.replace} <= may_move, again


def test_primary_placement_is_the_applied_plan() -> None:
    web, _ = unit(1)
    plan = Plan(place=(slot(1, "h01", web, id="w1"),), unplaced=((2, "why"),))
    assert primary_placement("web", [], plan) == PrimaryPlacement("web", (slot(1, "h01", web, id="w1"),), ((2, "why"),))


def test_an_upgrading_sidekick_keeps_its_old_config_slots_for_the_upgrade_to_replace() -> None:
    web, data = unit(1)
    old = dataclasses.replace(data, launch=dataclasses.replace(data.launch, image="busybox:old"))
    of = launches(web, data, old)
    web_slots = [view(slot(1, "h01", web, id="w1"), of)]
    data_slots = [view(slot(1, "h01", old, id="d1"), of)]
    plan = reconcile(
        data,
        stack=STACK,
        environment_id=ENV,
        slots=data_slots,
        hosts=active_hosts(1),
        other_slots=web_slots,
        dependencies_ready=True,
        new_id=ids(),
        now=0.0,
        primary=PrimaryPlacement("web", tuple(v.slot for v in web_slots)),
        accepted_hashes=frozenset({old.launch.config_hash()}),
    )
    assert plan.keep == ("d1",) and plan.empty
