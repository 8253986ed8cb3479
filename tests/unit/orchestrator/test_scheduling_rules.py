"""Table tests for placement under Cattle's scheduling rules: affinity, soft rules, global services, host
conditions, reservations and image archs, each with the exact placement or reason it must produce."""

from __future__ import annotations

import dataclasses

from corral.model.stack import ServiceSpec
from corral.orchestrator.reconciling import Plan

from .harness import (
    ACTIVE,
    DISCONNECTED,
    active_hosts,
    after,
    hosts,
    labelled_hosts,
    other_slots,
    run,
    running,
    service,
    slot,
    view,
)

A = "io.rancher.scheduler.affinity:"
GLOBAL = {"io.rancher.scheduler.global": "true"}
MIB = 2**20
GIB = 2**30
SPREAD = "io.rancher.stack_service.name=$${stack_name}/$${service_name}"


def placed_on(plan: Plan) -> dict[int, str]:
    return {s.index: s.host_id for s in plan.place}


def launches(*specs: ServiceSpec) -> dict[str, object]:
    return {s.launch.config_hash(): s.launch for s in specs}


def settle(spec: ServiceSpec, host_views, others=(), **kwargs) -> Plan:  # type: ignore[no-untyped-def]
    """Run, apply and run again: the second plan must be empty and keep the same reasons."""
    plan = run(spec, [], host_views, others=others, **kwargs)
    again = run(spec, after([], plan, launches(spec)), host_views, others=others, **kwargs)  # type: ignore[arg-type]
    assert again.empty and again.unplaced == plan.unplaced
    return plan


# -- host_label ------------------------------------------------------------------------------------------------


def test_host_label_places_only_on_hosts_with_all_pairs() -> None:
    host_views = labelled_hosts({"zone": "eu", "disk": "ssd"}, {"zone": "eu"}, {"zone": "eu", "disk": "ssd"})
    plan = settle(service(4, labels={A + "host_label": "zone=eu,disk=ssd"}), host_views)
    assert placed_on(plan) == {1: "h01", 2: "h03", 3: "h01", 4: "h03"}


def test_host_label_without_a_match_names_the_rule_and_numbers() -> None:
    plan = settle(service(2, labels={A + "host_label": "zone=eu"}), labelled_hosts({"zone": "us"}, {}, {}))
    reason = "affinity host_label zone=eu: 0 of 3 active hosts match"
    assert plan.unplaced == ((1, reason), (2, reason)) and not plan.place


def test_host_label_ne_excludes_a_host_matching_any_pair() -> None:
    host_views = labelled_hosts({"zone": "eu", "disk": "ssd"}, {"zone": "us", "disk": "hdd"}, {"zone": "us"})
    plan = settle(service(2, labels={A + "host_label_ne": "zone=eu,disk=hdd"}), host_views)
    assert placed_on(plan) == {1: "h03", 2: "h03"}
    plan = settle(service(1, labels={A + "host_label_ne": "zone=us"}), host_views[1:])
    assert plan.unplaced == ((1, "affinity host_label_ne zone=us: all 2 active hosts match"),)


def test_rules_after_a_filter_speak_of_remaining_hosts() -> None:
    labels = {A + "host_label": "zone=eu", A + "host_label_ne": "disk=hdd"}
    plan = settle(service(1, labels=labels), labelled_hosts({"zone": "eu", "disk": "hdd"}, {"zone": "us"}))
    assert plan.unplaced == (
        (
            1,
            "affinity host_label_ne disk=hdd: the only remaining active host matches"
            " (left out: host02 (fails affinity host_label zone=eu))",
        ),
    )


# -- container_label and container -----------------------------------------------------------------------------


def test_container_label_follows_containers_of_another_service() -> None:
    db = service(name="db", labels={"role": "database"})
    spec = service(3, labels={A + "container_label": "role=database"})
    plan = settle(spec, active_hosts(3), others=other_slots(db, ["h02"]))
    assert placed_on(plan) == {1: "h02", 2: "h02", 3: "h02"}
    plan = settle(spec, active_hosts(3))
    assert plan.unplaced[0] == (
        1,
        "affinity container_label role=database: 0 of 3 active hosts run a matching container",
    )


def test_system_labels_match_stack_and_service_names() -> None:
    db = service(name="db")
    spec = service(1, labels={A + "container_label": "io.rancher.stack_service.name=${stack_name}/db"})
    assert placed_on(settle(spec, active_hosts(3), others=other_slots(db, ["h03"]))) == {1: "h03"}


def test_hard_spread_idiom_allows_one_per_host() -> None:
    spec = service(4, labels={A + "container_label_ne": SPREAD})
    plan = settle(spec, active_hosts(3))
    assert sorted(placed_on(plan).values()) == ["h01", "h02", "h03"]
    reason = "affinity container_label_ne io.rancher.stack_service.name=app/web: all 3 active hosts already run one"
    assert plan.unplaced == ((4, reason),)


def test_soft_spread_idiom_places_everything() -> None:
    plan = settle(service(4, labels={A + "container_label_soft_ne": SPREAD}), active_hosts(3))
    assert sorted(placed_on(plan).values()) == ["h01", "h01", "h02", "h03"]


def test_container_name_rules() -> None:
    db = service(name="db")
    others = other_slots(db, ["h02", "h03"])  # app-db-1 on h02, app-db-2 on h03
    assert placed_on(settle(service(2, labels={A + "container": "app-db-2"}), active_hosts(3), others)) == {
        1: "h03",
        2: "h03",
    }
    plan = settle(service(2, labels={A + "container_ne": "app-db-1,app-db-2"}), active_hosts(3), others)
    assert placed_on(plan) == {1: "h01", 2: "h01"}
    plan = settle(service(1, labels={A + "container": "app-db-9"}), active_hosts(2), others)
    assert plan.unplaced == ((1, "affinity container app-db-9: 0 of 2 active hosts run it"),)


# -- soft rules ------------------------------------------------------------------------------------------------


def test_soft_host_label_prefers_matching_hosts_and_falls_back() -> None:
    host_views = labelled_hosts({"zone": "eu"}, {"zone": "us"})
    assert placed_on(settle(service(3, labels={A + "host_label_soft": "zone=eu"}), host_views)) == {
        1: "h01",
        2: "h01",
        3: "h01",
    }
    plan = settle(service(2, ports=[80], labels={A + "host_label_soft": "zone=eu"}), host_views)
    assert placed_on(plan) == {1: "h01", 2: "h02"}


def test_soft_rules_are_dropped_last_first() -> None:
    # labels sort by key: host_label_soft (zone=eu) comes first, host_label_soft_ne (disk=hdd) last
    labels = {A + "host_label_soft": "zone=eu", A + "host_label_soft_ne": "disk=hdd"}
    host_views = labelled_hosts({"zone": "us", "disk": "ssd"}, {"zone": "eu", "disk": "hdd"})
    assert placed_on(settle(service(1, labels=labels), host_views)) == {1: "h02"}
    host_views = labelled_hosts({"zone": "us", "disk": "ssd"}, {"zone": "eu", "disk": "hdd"}, {"zone": "eu"})
    assert placed_on(settle(service(1, labels=labels), host_views)) == {1: "h03"}


def test_hard_rules_win_over_soft_ones() -> None:
    labels = {A + "host_label": "zone=us", A + "host_label_soft": "zone=eu"}
    assert placed_on(settle(service(2, labels=labels), labelled_hosts({"zone": "eu"}, {"zone": "us"}))) == {
        1: "h02",
        2: "h02",
    }


# -- global services -------------------------------------------------------------------------------------------


def test_global_places_one_per_matching_host_and_ignores_scale() -> None:
    labels = {**GLOBAL, A + "host_label": "zone=eu"}
    host_views = labelled_hosts({"zone": "eu"}, {"zone": "us"}, {"zone": "eu"})
    plan = settle(service(7, labels=labels), host_views)
    assert placed_on(plan) == {1: "h01", 2: "h03"} and not plan.unplaced


def test_global_follows_added_hosts_and_label_changes() -> None:
    spec = service(1, labels={**GLOBAL, A + "host_label": "zone=eu"})
    host_views = labelled_hosts({"zone": "eu"}, {"zone": "eu"})
    slots = after([], run(spec, [], host_views), launches(spec))  # type: ignore[arg-type]
    grown = [*host_views, *labelled_hosts({}, {}, {"zone": "eu"})[2:]]
    plan = run(spec, slots, grown)
    assert placed_on(plan) == {3: "h03"} and plan.keep == ("new1", "new2")
    moved = [dataclasses.replace(host_views[0], labels={"zone": "us"}), host_views[1]]
    plan = run(spec, slots, moved)
    assert plan.remove == ("new1",) and plan.keep == ("new2",) and not plan.place


def test_global_ignores_container_and_soft_rules_and_keeps_slots_on_lost_hosts() -> None:
    labels = {**GLOBAL, A + "container_label": "role=none", A + "host_label_soft": "zone=eu"}
    spec = service(1, labels=labels)
    assert sorted(placed_on(settle(spec, active_hosts(3))).values()) == ["h01", "h02", "h03"]
    host_views = hosts(ACTIVE, DISCONNECTED)
    slots = [view(slot(1, "h02", spec), launches(spec))]  # type: ignore[arg-type]
    plan = run(spec, slots, host_views)
    assert plan.keep == ("s1",) and placed_on(plan) == {2: "h01"}


def test_global_reports_a_host_that_cannot_take_it() -> None:
    proxy = service(name="proxy", ports=[80])
    plan = settle(service(1, ports=[80], labels=GLOBAL), active_hosts(3), others=other_slots(proxy, ["h02"]))
    assert placed_on(plan) == {1: "h01", 2: "h03"}
    assert plan.unplaced == ((3, "host host02: port 80/tcp is already in use there"),)


def test_global_skips_cordoned_and_wrong_arch_hosts() -> None:
    host_views = active_hosts(3)
    host_views[1] = dataclasses.replace(host_views[1], schedulable=False)
    host_views[2] = dataclasses.replace(host_views[2], arch="aarch64")
    plan = settle(service(1, labels=GLOBAL), host_views, image_archs=frozenset({"amd64"}))
    assert placed_on(plan) == {1: "h01"} and not plan.unplaced


# -- host conditions -------------------------------------------------------------------------------------------


def test_unschedulable_hosts_take_nothing_new_but_keep_their_slots() -> None:
    spec = service(3)
    host_views = [dataclasses.replace(active_hosts(2)[0], schedulable=False), active_hosts(2)[1]]
    slots = [running(slot(1, "h01", spec), launches(spec))]  # type: ignore[arg-type]
    plan = run(spec, slots, host_views)
    assert plan.keep == ("s1",) and placed_on(plan) == {2: "h02", 3: "h02"}
    cordoned = [dataclasses.replace(h, schedulable=False) for h in active_hosts(2)]
    assert run(spec, [], cordoned).unplaced[0] == (
        1,
        "none of the 2 active hosts takes new containers (2 deactivated)",
    )


def test_evacuating_hosts_hand_their_slots_over() -> None:
    spec = service(2)
    host_views = [dataclasses.replace(active_hosts(2)[0], evacuating=True), active_hosts(2)[1]]
    slots = [running(slot(1, "h01", spec), launches(spec)), running(slot(2, "h02", spec), launches(spec))]  # type: ignore[arg-type]
    plan = run(spec, slots, host_views)
    assert plan.remove == ("s1",) and not plan.replace  # it stops first; its index waits for that
    assert plan.unplaced == ((1, "its host host01 is evacuating; waiting for app-web-1 on host01 to stop"),)
    plan = run(spec, slots, host_views[:1])
    assert plan.keep == ("s1",) and plan.remove == ("s2",)
    why = "the only active host takes no new containers (1 evacuating)"
    assert plan.unplaced == ((1, f"its host host01 is evacuating, and no active host can take it: {why}"), (2, why))


# -- reservations ----------------------------------------------------------------------------------------------


def test_memory_reservations_fill_hosts_up_to_capacity() -> None:
    host_views = [dataclasses.replace(h, memory_bytes=GIB) for h in active_hosts(2)]
    big = service(name="big", mem=768 * MIB)
    spec = service(3, mem=512 * MIB)
    plan = settle(spec, host_views, others=other_slots(big, ["h01"]))
    assert placed_on(plan) == {1: "h02", 2: "h02"}
    assert plan.unplaced == ((3, "needs 512 MiB memory reserved: the largest free host has 256 MiB"),)
    plan = settle(service(1, mem=2 * GIB), host_views)
    assert plan.unplaced == ((1, "needs 2 GiB memory reserved: the largest host has 1 GiB"),)


def test_unknown_capacity_means_no_limit() -> None:
    assert len(settle(service(5, mem=GIB, cpu=4.0), active_hosts(1)).place) == 5


def test_cpu_reservations() -> None:
    host_views = [dataclasses.replace(h, cpus=2.0) for h in active_hosts(2)]
    plan = settle(service(3, cpu=1.5), host_views)
    assert sorted(placed_on(plan).values()) == ["h01", "h02"]
    assert plan.unplaced == ((3, "needs 1.5 CPUs reserved: the most free host has 0.5 CPUs"),)


# -- image archs and malformed labels --------------------------------------------------------------------------


def test_image_archs_filter_hosts_by_normalised_arch() -> None:
    host_views = active_hosts(3)
    host_views[1] = dataclasses.replace(host_views[1], arch="aarch64")
    assert placed_on(settle(service(2), host_views, image_archs=frozenset({"arm64"}))) == {1: "h02", 2: "h02"}
    plan = settle(service(1), active_hosts(3), image_archs=frozenset({"arm64"}))
    assert plan.unplaced == ((1, "needs arm64: 0 of 3 active hosts match (they have x86_64)"),)


def test_a_malformed_label_holds_the_service_with_its_reason() -> None:
    spec = service(2, labels={A + "host_label": "zone"})
    slots = [running(slot(1, "h01", spec), launches(spec))]  # type: ignore[arg-type]
    plan = run(spec, slots, active_hosts(2))
    reason = "invalid scheduling label: label io.rancher.scheduler.affinity:host_label: 'zone' is not key=value"
    assert plan.keep == ("s1",) and plan.empty and plan.unplaced == ((2, reason),)
