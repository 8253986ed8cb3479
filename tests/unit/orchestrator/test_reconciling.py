"""Table tests: one rule of the Cattle reconciler each, with the exact plan or reason it must produce."""

from __future__ import annotations

from corral.model.stack import LaunchConfig, PortSpec, ServiceSpec
from corral.orchestrator.reconciling import Plan, SlotView, apply_plan

from .harness import (
    ACTIVE,
    DISCONNECTED,
    RECONNECTING,
    HostState,
    active_hosts,
    hosts,
    other_slots,
    run,
    running,
    service,
    slot,
    view,
)


def launches(*specs):
    return {s.launch.config_hash(): s.launch for s in specs}


def placed_on(plan: Plan) -> dict[int, str]:
    return {s.index: s.host_id for s in plan.place}


def test_scale_4_on_2_hosts_spreads_2_and_2() -> None:
    plan = run(service(4), [], active_hosts(2))
    assert placed_on(plan) == {1: "h01", 2: "h02", 3: "h01", 4: "h02"}
    assert [s.id for s in plan.place] == ["new1", "new2", "new3", "new4"]
    assert {s.config_hash for s in plan.place} == {service(4).launch.config_hash()}
    assert {(s.environment_id, s.stack, s.service) for s in plan.place} == {("env1", "app", "web")}
    assert not (plan.remove or plan.replace or plan.update or plan.keep or plan.unplaced)


def test_scale_6_on_3_hosts_spreads_2_2_2() -> None:
    plan = run(service(6), [], active_hosts(3))
    assert sorted(placed_on(plan)) == [1, 2, 3, 4, 5, 6]
    assert sorted(placed_on(plan).values()) == ["h01", "h01", "h02", "h02", "h03", "h03"]


def test_scale_up_fills_the_lowest_free_index_on_the_least_loaded_host() -> None:
    spec = service(3)
    slots = [view(slot(1, "h01", spec), launches(spec)), view(slot(3, "h01", spec), launches(spec))]
    plan = run(spec, slots, active_hosts(2))
    assert placed_on(plan) == {2: "h02"}
    assert plan.keep == ("s1", "s3")


def test_spread_prefers_fewest_of_this_service_then_fewest_in_total_then_name() -> None:
    db = service(name="db")
    others = other_slots(db, ["h01", "h01", "h02"])
    plan = run(service(3), [], active_hosts(3), others=others)
    assert placed_on(plan) == {1: "h03", 2: "h02", 3: "h01"}


def test_scale_to_1_removes_the_extras_highest_index_first() -> None:
    spec = service(4)
    slots = [view(slot(i, f"h0{1 + i % 2}", spec), launches(spec)) for i in (1, 2, 3, 4)]
    plan = run(service(1), slots, active_hosts(2))
    assert plan.remove == ("s4", "s3", "s2")
    assert plan.keep == ("s1",)
    assert not plan.place and not plan.unplaced


def test_scale_to_0_removes_everything() -> None:
    spec = service(2)
    slots = [view(slot(i, "h01", spec), launches(spec)) for i in (1, 2)]
    plan = run(service(0), slots, active_hosts(1))
    assert plan.remove == ("s2", "s1") and not plan.keep and not plan.unplaced


def test_a_port_published_by_another_service_blocks_that_host() -> None:
    proxy = service(name="proxy", ports=[80])
    plan = run(service(2, ports=[80]), [], active_hosts(3), others=other_slots(proxy, ["h01"]))
    assert placed_on(plan) == {1: "h02", 2: "h03"}


def test_a_port_published_by_a_slot_of_this_plan_blocks_that_host() -> None:
    plan = run(service(3, ports=[80, 443]), [], active_hosts(2))
    assert placed_on(plan) == {1: "h01", 2: "h02"}
    assert plan.unplaced == (
        (
            3,
            "ports 80/tcp, 443/tcp are taken on all 2 active hosts; 2 of them already run web, and a host takes one"
            " web container while it publishes 80/tcp, 443/tcp",
        ),
    )


def test_ports_taken_by_another_service_everywhere_are_named() -> None:
    proxy = service(name="proxy", ports=[80])
    plan = run(service(1, ports=[80]), [], active_hosts(3), others=other_slots(proxy, ["h01", "h02", "h03"]))
    assert plan.unplaced == ((1, "port 80/tcp is taken on all 3 active hosts"),)


def test_ports_taken_piecemeal_are_counted() -> None:
    a, b = service(name="a", ports=[80]), service(name="b", ports=[443])
    others = other_slots(a, ["h01"]) + other_slots(b, ["h02"])
    plan = run(service(1, ports=[80, 443]), [], active_hosts(2), others=others)
    assert plan.unplaced == (
        (1, "each of the 2 active hosts has one of ports 80/tcp, 443/tcp taken (80/tcp on 1, 443/tcp on 1)"),
    )


def test_different_protocols_do_not_clash() -> None:
    dns = ServiceSpec(name="dns", launch=LaunchConfig(image="dns", ports=(PortSpec(53, 53, "udp"),)))
    plan = run(service(1, ports=[53]), [], active_hosts(1), others=other_slots(dns, ["h01"]))
    assert placed_on(plan) == {1: "h01"}


def test_disconnected_host_slot_is_replaced_elsewhere_with_the_same_index() -> None:
    spec = service(2)
    slots = [view(slot(1, "h01", spec), launches(spec)), view(slot(2, "h02", spec), launches(spec))]
    plan = run(spec, slots, hosts(ACTIVE, DISCONNECTED, ACTIVE))
    assert plan.keep == ("s1",)
    assert len(plan.replace) == 1
    old, new = plan.replace[0]
    assert (old, new.index, new.host_id, new.id) == ("s2", 2, "h03", "new1")
    assert not plan.remove and not plan.place


def test_reconnecting_host_slot_is_kept() -> None:
    spec = service(2)
    slots = [view(slot(1, "h01", spec), launches(spec)), view(slot(2, "h02", spec), launches(spec))]
    plan = run(spec, slots, hosts(ACTIVE, RECONNECTING, ACTIVE))
    assert plan.keep == ("s1", "s2") and plan.empty and not plan.unplaced


def test_disconnected_slot_with_nowhere_to_go_is_kept_with_a_reason() -> None:
    spec = service(2, ports=[80])
    slots = [view(slot(1, "h01", spec), launches(spec)), view(slot(2, "h02", spec), launches(spec))]
    plan = run(spec, slots, hosts(ACTIVE, DISCONNECTED))
    assert plan.keep == ("s1", "s2") and plan.empty
    assert plan.unplaced == (
        (
            2,
            "its host host02 is disconnected, and no active host can take it: 1 of 2 hosts is disconnected;"
            " port 80/tcp is taken on the only active host; it already runs web, and a host takes one web container"
            " while it publishes 80/tcp",
        ),
    )


def test_removing_and_unknown_states_count_as_lost() -> None:
    spec = service(1)
    plan = run(spec, [view(slot(1, "h01", spec), launches(spec))], hosts(HostState.REMOVING, ACTIVE))
    assert [(old, new.host_id) for old, new in plan.replace] == [("s1", "h02")]


def test_slots_on_hosts_that_no_longer_exist_are_removed_and_placed_again() -> None:
    spec = service(1)
    plan = run(spec, [view(slot(1, "gone", spec), launches(spec))], active_hosts(1))
    assert plan.remove == ("s1",)
    assert placed_on(plan) == {1: "h01"}


def test_no_active_host_gives_a_reason_per_index() -> None:
    plan = run(service(2), [], hosts(DISCONNECTED, RECONNECTING, DISCONNECTED))
    reason = "no active host in the environment: 3 of 3 hosts are not active (1 reconnecting, 2 disconnected)"
    assert plan.unplaced == ((1, reason), (2, reason))
    assert run(service(1), [], []).unplaced == ((1, "no hosts in the environment"),)
    assert run(service(1), [], hosts(DISCONNECTED)).unplaced == (
        (1, "no active host in the environment: 1 of 1 host is disconnected"),
    )


def test_dependencies_not_ready_place_nothing_and_keep_everything() -> None:
    spec = service(3, depends_on=("db", "cache"))
    old = service(3, image="nginx:old", depends_on=("db", "cache"))
    slots = [
        view(slot(1, "h01", spec), launches(spec)),
        view(slot(2, "h02", spec), launches(spec)),
        view(slot(3, "h01", old), launches(old)),
    ]
    plan = run(spec, slots, hosts(ACTIVE, DISCONNECTED), ready=False)
    assert plan.keep == ("s1", "s2", "s3") and plan.empty
    assert plan.unplaced == (
        (2, "waiting for dependencies: db, cache (before moving it: its host host02 is disconnected)"),
    )
    plan = run(service(2, depends_on=("db",)), [], active_hosts(2), ready=False)
    assert plan.unplaced == ((1, "waiting for dependencies: db"), (2, "waiting for dependencies: db"))


def test_a_config_change_updates_in_place() -> None:
    old, new = service(2, image="nginx:1"), service(2, image="nginx:2")
    slots = [running(slot(1, "h01", old), launches(old)), running(slot(2, "h02", old), launches(old))]
    plan = run(new, slots, active_hosts(2))
    assert [(s.id, s.host_id, s.index, s.config_hash) for s in plan.update] == [
        ("s1", "h01", 1, new.launch.config_hash()),
        ("s2", "h02", 2, new.launch.config_hash()),
    ]
    assert not (plan.place or plan.remove or plan.replace or plan.keep)


def test_a_new_port_that_clashes_on_the_host_moves_the_slot() -> None:
    old, new = service(2), service(2, ports=[80])
    slots = [view(slot(1, "h01", old), launches(old)), view(slot(2, "h01", old), launches(old))]
    plan = run(new, slots, active_hosts(2))
    assert [s.id for s in plan.update] == ["s1"]
    assert plan.remove == ("s2",) and not plan.replace  # it goes first, its replacement waits for it to stop
    assert plan.unplaced[0][1].endswith("; waiting for app-web-2 on host01 to stop")
    plan = run(new, slots, active_hosts(1))
    assert [s.id for s in plan.update] == ["s1"] and plan.remove == ("s2",)
    assert plan.unplaced[0][0] == 2
    assert plan.unplaced[0][1].startswith(
        "its new configuration publishes port 80/tcp, already in use on its host host01,"
        " and no active host can take it: port 80/tcp is taken on the only active host"
    )


def test_a_running_holder_of_a_port_wins_a_clash() -> None:
    spec = service(2, ports=[80])
    launch_of = launches(spec)
    slots = [view(slot(1, "h01", spec), launch_of), running(slot(2, "h01", spec), launch_of)]
    plan = run(spec, slots, active_hosts(2))
    assert plan.keep == ("s2",)
    assert plan.remove == ("s1",) and not plan.replace


def test_duplicates_of_one_index_keep_the_best() -> None:
    spec, old = service(1), service(1, image="nginx:old")
    launch_of = launches(spec, old)
    slots = [
        view(slot(1, "h01", spec, id="a"), launch_of),  # not running
        running(slot(1, "h02", spec, id="b"), launch_of),  # the best: active, running, current hash
        running(slot(1, "h03", spec, id="c"), launch_of),  # reconnecting host
        running(slot(1, "h01", old, id="d"), launch_of),  # old hash
    ]
    plan = run(spec, slots, hosts(ACTIVE, ACTIVE, RECONNECTING))
    assert plan.keep == ("b",)
    assert sorted(plan.remove) == ["a", "c", "d"]


def test_apply_plan_drops_replaces_updates_and_adds() -> None:
    old, new = service(3, image="nginx:1"), service(3, image="nginx:2")
    launch_of = launches(old, new)
    slots = [
        view(slot(1, "h01", old), launch_of),
        view(slot(2, "h02", new), launch_of),
        view(slot(4, "h01", new), launch_of),
    ]
    plan = run(new, slots, hosts(ACTIVE, DISCONNECTED, ACTIVE))
    result = apply_plan(slots, plan)
    assert [(s.index, s.host_id, s.config_hash) for s in result] == [
        (1, "h01", new.launch.config_hash()),
        (2, "h03", new.launch.config_hash()),
        (3, "h01", new.launch.config_hash()),
    ]
    assert plan.remove == ("s4",)
    again = run(new, [SlotView(s, published_ports=frozenset()) for s in result], hosts(ACTIVE, DISCONNECTED, ACTIVE))
    assert again.empty and not again.unplaced
