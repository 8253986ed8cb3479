"""The rolling-upgrade decision (orchestrator/upgrades.py): batches, start_first, deadlines, and a simulated world
in which it must never take more than `batch_size` indexes out of service."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.orchestrator.upgrades import (
    ACTIVE,
    ROLLBACK_ERROR,
    ROLLING_BACK,
    UPGRADE_ERROR,
    UPGRADED,
    UPGRADING,
    Step,
    Strategy,
    UpgradeSlot,
    decide,
    rollback_step,
    strategy_for,
)

OLD, NEW = "old-hash", "new-hash"


def running(slot_id: str, index: int, config_hash: str, **kw: object) -> UpgradeSlot:
    values: dict[str, object] = {
        "id": slot_id,
        "name": f"s-web-{index}",
        "index": index,
        "config_hash": config_hash,
        "observed_state": "running",
        "observed_hash": config_hash,
    }
    values.update(kw)
    return UpgradeSlot(**values)  # type: ignore[arg-type]


def old_slots(scale: int) -> list[UpgradeSlot]:
    return [running(f"old{i}", i, OLD) for i in range(1, scale + 1)]


def apply(slots: list[UpgradeSlot], step: Step) -> list[UpgradeSlot]:
    result = []
    for s in slots:
        if s.id in step.retire:
            s = dataclasses.replace(s, retired=True)
        if s.id in step.stop:
            s = dataclasses.replace(s, running=False, observed_state="exited")
        result.append(s)
    return result


def test_first_batch_retires_the_lowest_indexes_and_stops_them() -> None:
    step = decide(old_slots(4), new_hash=NEW, scale=4, strategy=Strategy(batch_size=1), batch_at=0.0, now=100.0)
    assert step.state == UPGRADING
    assert step.retire == ("old1",) and step.stop == ("old1",)
    assert step.batch_at == 100.0


def test_start_first_keeps_the_old_container_until_the_new_one_is_ready() -> None:
    strategy = Strategy(batch_size=2, start_first=True)
    first = decide(old_slots(3), new_hash=NEW, scale=3, strategy=strategy, batch_at=0.0, now=10.0)
    assert first.retire == ("old1", "old2") and first.stop == ()
    slots = apply(old_slots(3), first)
    slots.append(running("new1", 1, NEW))
    slots.append(running("new2", 2, NEW, observed_state="created"))
    second = decide(slots, new_hash=NEW, scale=3, strategy=strategy, batch_at=first.batch_at, now=11.0)
    assert second.stop == ("old1",) and second.retire == ()
    assert "s-web-2 (created)" in second.reason


def test_next_batch_waits_for_readiness_then_for_the_interval() -> None:
    strategy = Strategy(batch_size=1, interval_ms=5000)
    slots = apply(old_slots(2), Step(UPGRADING, retire=("old1",), stop=("old1",)))
    slots.append(running("new1", 1, NEW, health="initializing"))
    waiting = decide(slots, new_hash=NEW, scale=2, strategy=strategy, batch_at=100.0, now=101.0)
    assert waiting.retire == () and "health initializing" in waiting.reason
    slots[-1] = dataclasses.replace(slots[-1], health="healthy")
    early = decide(slots, new_hash=NEW, scale=2, strategy=strategy, batch_at=100.0, now=102.0)
    assert early.retire == () and early.state == UPGRADING
    due = decide(slots, new_hash=NEW, scale=2, strategy=strategy, batch_at=100.0, now=105.5)
    assert due.retire == ("old2",)


def test_no_old_slot_left_means_upgraded() -> None:
    slots = [dataclasses.replace(s, retired=True, running=False) for s in old_slots(2)]
    slots += [running("new1", 1, NEW), running("new2", 2, NEW)]
    step = decide(slots, new_hash=NEW, scale=2, strategy=Strategy(), batch_at=1.0, now=2.0)
    assert step == Step(UPGRADED, "", batch_at=1.0)


def test_a_batch_past_its_deadline_is_an_error_naming_the_container() -> None:
    slots = apply(old_slots(2), Step(UPGRADING, retire=("old1",), stop=("old1",)))
    slots.append(running("new1", 1, NEW, observed_state="exited", reason="image x is not present on this host"))
    step = decide(slots, new_hash=NEW, scale=2, strategy=Strategy(deadline_seconds=30), batch_at=100.0, now=131.0)
    assert step.state == UPGRADE_ERROR
    assert "s-web-1 (image x is not present on this host)" in step.reason and "30 s" in step.reason
    recovered = [*slots[:-1], running("new1", 1, NEW)]
    again = decide(recovered, new_hash=NEW, scale=2, strategy=Strategy(deadline_seconds=30), batch_at=100.0, now=500)
    assert again.state == UPGRADING and again.retire == ("old2",)


def test_rollback_is_active_once_the_old_containers_run_again() -> None:
    back = [running("old1", 1, OLD), running("old2", 2, OLD, observed_state="exited")]
    assert rollback_step(back, config_hash=OLD, since=0.0, now=5.0, deadline=60).state == ROLLING_BACK
    assert rollback_step(back, config_hash=OLD, since=0.0, now=61.0, deadline=60).state == ROLLBACK_ERROR
    back[1] = running("old2", 2, OLD)
    assert rollback_step(back, config_hash=OLD, since=0.0, now=61.0, deadline=60).state == ACTIVE


def test_strategy_comes_from_the_request_then_rancher_compose() -> None:
    compose = {"batch_size": 3, "interval_millis": 100, "start_first": True}
    assert strategy_for(compose, None) == Strategy(3, 100, True, 300.0)
    assert strategy_for(compose, None, batch_size=1, start_first=False).batch_size == 1
    assert strategy_for(None, {"initializing_timeout": 600000}).deadline_seconds == 600.0
    with pytest.raises(InvalidInput) as caught:
        strategy_for(None, None, batch_size=0)
    assert caught.value.field == "upgrade.batch_size"


# -- a simulated world --------------------------------------------------------------------------------------------


def reconcile(slots: list[UpgradeSlot], scale: int, counter: list[int]) -> list[UpgradeSlot]:
    """What the reconciler does for an upgrading service: a new slot at every index no current slot covers."""
    covered = {s.index for s in slots if not s.retired}
    for index in range(1, scale + 1):
        if index not in covered:
            counter[0] += 1
            slots.append(UpgradeSlot(f"new{counter[0]}", f"s-web-{index}-u1", index, NEW))
    return slots


def serving(slots: list[UpgradeSlot], scale: int) -> int:
    return len({s.index for s in slots if s.ready and s.running and s.index <= scale})


@settings(max_examples=200, deadline=None)
@given(
    scale=st.integers(1, 6),
    batch_size=st.integers(1, 4),
    start_first=st.booleans(),
    progress=st.lists(st.booleans(), min_size=1, max_size=60),
)
def test_never_more_than_a_batch_out_of_service_and_the_upgrade_finishes(
    scale: int, batch_size: int, start_first: bool, progress: list[bool]
) -> None:
    strategy = Strategy(batch_size=batch_size, interval_ms=0, start_first=start_first)
    slots, counter, batch_at = old_slots(scale), [0], 0.0
    for now, becomes_ready in enumerate([*progress, *[True] * (4 * scale + 4)], start=1):
        step = decide(slots, new_hash=NEW, scale=scale, strategy=strategy, batch_at=batch_at, now=float(now))
        assert len(step.retire) <= batch_size
        slots, batch_at = apply(slots, step), step.batch_at
        assert serving(slots, scale) >= scale - batch_size
        # deciding again on the decision's own result changes nothing
        again = decide(slots, new_hash=NEW, scale=scale, strategy=strategy, batch_at=batch_at, now=float(now))
        assert not again.acts
        slots = reconcile(slots, scale, counter)
        if becomes_ready:  # the agents start the new containers
            slots = [
                dataclasses.replace(s, observed_state="running", observed_hash=s.config_hash)
                if s.config_hash == NEW
                else s
                for s in slots
            ]
        assert serving(slots, scale) >= scale - batch_size
    final = decide(slots, new_hash=NEW, scale=scale, strategy=strategy, batch_at=batch_at, now=10_000.0)
    assert final.state == UPGRADED
    assert sorted(s.index for s in slots if s.retired) == list(range(1, scale + 1))
    assert not any(s.running for s in slots if s.retired)
