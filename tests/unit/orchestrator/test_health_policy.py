"""The health-check strategy: which unhealthy slots the reconciler replaces (none / recreate / recreateOnQuorum),
the backoff per index, and what the reconciler's plan looks like when it does."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from corral.model.health import HEALTHY, INITIALIZING, UNHEALTHY, HealthCheck
from corral.model.stack import ServiceSpec
from corral.orchestrator.health import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_MAX_SECONDS,
    Replacement,
    backoff_seconds,
    health_replacements,
    record_replacements,
)
from corral.orchestrator.reconciling import Plan, SlotView, reconcile

from .harness import ENV, STACK, active_hosts, ids, running, service, slot


def checked(scale: int, strategy: str = "recreate", quorum: int = 1) -> ServiceSpec:
    check = HealthCheck(port=80, strategy=strategy, quorum=quorum)  # type: ignore[arg-type]
    return dataclasses.replace(service(scale), health_check=check.to_dict())


def views(spec: ServiceSpec, healths: list[str]) -> list[SlotView]:
    launch_of = {spec.launch.config_hash(): spec.launch}
    hosts = ["h01", "h02", "h03"]
    return [
        dataclasses.replace(running(slot(i, hosts[(i - 1) % 3], spec), launch_of), health=h)
        for i, h in enumerate(healths, 1)
    ]


def plan_for(spec: ServiceSpec, slots: list[SlotView], history: dict[int, Replacement] | None = None) -> Plan:
    return reconcile(
        spec,
        stack=STACK,
        environment_id=ENV,
        slots=slots,
        hosts=active_hosts(3),
        other_slots=[],
        dependencies_ready=True,
        new_id=ids(),
        now=1000.0,
        health_history=history,
    )


def test_recreate_replaces_the_unhealthy_slot_with_a_new_id_for_the_same_index() -> None:
    spec = checked(3)
    slots = views(spec, [HEALTHY, UNHEALTHY, INITIALIZING])
    plan = plan_for(spec, slots)
    # it goes first; its index waits until the old container is observed stopped (occupancy.py)
    assert plan.remove == ("s2",) and not plan.replace and not plan.place
    assert plan.unplaced == ((2, "its container is unhealthy; waiting for app-web-2 on host02 to stop"),)
    assert set(plan.keep) == {"s1", "s3"}
    after = [v for v in slots if v.slot.id != "s2"]
    waiting = reconcile(
        spec,
        stack=STACK,
        environment_id=ENV,
        slots=after,
        hosts=active_hosts(3),
        other_slots=[],
        dependencies_ready=True,
        new_id=ids(),
        now=1000.0,
        blocked={2: "waiting for app-web-2 on host02 to stop"},
    )
    assert waiting.empty and waiting.unplaced == ((2, "waiting for app-web-2 on host02 to stop"),)
    assert [(new.index, new.id) for new in plan_for(spec, after).place] == [(2, "new1")]


def test_none_and_no_check_leave_unhealthy_containers_alone() -> None:
    for spec in (checked(2, "none"), service(2)):
        plan = plan_for(spec, views(spec, [UNHEALTHY, UNHEALTHY]))
        assert plan.empty and set(plan.keep) == {"s1", "s2"}


def test_recreate_on_quorum_replaces_only_while_enough_are_healthy() -> None:
    spec = checked(3, "recreateOnQuorum", quorum=2)
    assert plan_for(spec, views(spec, [HEALTHY, UNHEALTHY, UNHEALTHY])).empty
    decision = health_replacements(
        spec.health(), dict(enumerate(views(spec, [HEALTHY, UNHEALTHY]), 1)), now=0, history={}
    )
    assert decision.waiting == {2: "unhealthy, not replaced: 1 healthy, recreateOnQuorum needs 2"}
    plan = plan_for(spec, views(spec, [HEALTHY, HEALTHY, UNHEALTHY]))
    assert plan.remove == ("s3",)


def test_backoff_holds_a_repeatedly_replaced_index() -> None:
    spec = checked(1)
    slots = views(spec, [UNHEALTHY])
    assert plan_for(spec, slots, {1: Replacement(1, 995.0)}).empty  # 5 s ago, waits 10 s
    assert plan_for(spec, slots, {1: Replacement(1, 990.0)}).remove  # 10 s ago
    assert plan_for(spec, slots, {1: Replacement(3, 970.0)}).empty  # waits 40 s
    plan = plan_for(spec, slots)
    history = record_replacements({}, slots, plan, 1000.0)
    assert history == {1: Replacement(1, 1000.0)}
    history = record_replacements(history, slots, plan, 1010.0)
    assert history == {1: Replacement(2, 1010.0)}
    assert record_replacements(history, views(spec, [HEALTHY]), Plan(), 1020.0) == {}


def test_no_replacement_while_dependencies_are_not_ready() -> None:
    spec = checked(1)
    plan = reconcile(
        spec,
        stack=STACK,
        environment_id=ENV,
        slots=views(spec, [UNHEALTHY]),
        hosts=active_hosts(1),
        other_slots=[],
        dependencies_ready=False,
        new_id=ids(),
        now=0.0,
    )
    assert not plan.replace and plan.keep == ("s1",)


@given(st.integers(0, 100))
def test_backoff_is_bounded_and_grows(count: int) -> None:
    assert 0 <= backoff_seconds(count) <= BACKOFF_MAX_SECONDS
    assert backoff_seconds(count) <= backoff_seconds(count + 1)
    assert backoff_seconds(1) == BACKOFF_BASE_SECONDS and backoff_seconds(0) == 0


@given(
    strategy=st.sampled_from(["none", "recreate", "recreateOnQuorum"]),
    quorum=st.integers(1, 5),
    healths=st.lists(st.sampled_from(["", INITIALIZING, HEALTHY, UNHEALTHY, "reinitializing"]), max_size=8),
    history=st.dictionaries(st.integers(1, 8), st.builds(Replacement, st.integers(1, 10), st.floats(0, 2000))),
)
def test_policy_properties(strategy: str, quorum: int, healths: list[str], history: dict[int, Replacement]) -> None:
    spec = checked(len(healths), strategy, quorum)
    slots = views(spec, healths)
    decision = health_replacements(spec.health(), {v.slot.index: v for v in slots}, now=1000.0, history=history)
    unhealthy = {i for i, h in enumerate(healths, 1) if h == UNHEALTHY}
    if strategy == "none":
        assert not decision.replace and not decision.waiting
    else:
        assert set(decision.replace) | set(decision.waiting) == unhealthy  # only unhealthy ones, each decided once
    assert not set(decision.replace) & set(decision.waiting)
    if strategy == "recreateOnQuorum" and healths.count(HEALTHY) < quorum:
        assert not decision.replace
    for index in decision.replace:
        last = history.get(index)
        assert last is None or last.at + backoff_seconds(last.count) <= 1000.0
    # the reconciler removes exactly those first (their indexes wait for the old containers to stop)
    plan = plan_for(spec, slots, history)
    assert {v.slot.index for v in slots if v.slot.id in plan.remove} == set(decision.replace)
    assert not plan.replace and not plan.place
    assert len(plan.keep) + len(plan.remove) == len(healths)


def test_a_global_service_replaces_an_unhealthy_container_on_its_own_host() -> None:
    base = checked(1)
    labels = (*base.launch.labels, ("io.rancher.scheduler.global", "true"))
    spec = dataclasses.replace(base, launch=dataclasses.replace(base.launch, labels=labels))
    slots = views(spec, [HEALTHY, UNHEALTHY, UNHEALTHY])
    plan = plan_for(spec, slots, {3: Replacement(1, 995.0)})  # index 3 waits out its backoff
    assert plan.remove == ("s2",) and not plan.replace and not plan.place
    assert plan.unplaced == ((2, "its container is unhealthy; waiting for app-web-2 on host02 to stop"),)
    assert set(plan.keep) == {"s1", "s3"}
    none = dataclasses.replace(spec, health_check=HealthCheck(port=80, strategy="none").to_dict())
    assert not plan_for(none, views(none, [HEALTHY, UNHEALTHY, UNHEALTHY])).remove
    # the host gets a new container at once, at an index no old container may still hold
    after = [v for v in slots if v.slot.id != "s2"]
    again = reconcile(
        spec,
        stack=STACK,
        environment_id=ENV,
        slots=after,
        hosts=active_hosts(3),
        other_slots=[],
        dependencies_ready=True,
        new_id=ids(),
        now=1000.0,
        health_history={3: Replacement(1, 995.0)},
        blocked={2: "waiting for app-web-2 on host02 to stop"},
    )
    assert [(new.index, new.host_id) for new in again.place] == [(4, "h02")]
