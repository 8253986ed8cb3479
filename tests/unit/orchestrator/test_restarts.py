"""The pure restart decision (orchestrator/restarts.py) against a simulated agent that acts on the desired state
late and reports late: never more than a batch down, every container restarted exactly once, the interval kept,
and a restart resumed from its stored progress (a server restart) decides the same."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.orchestrator.restarts import RestartProgress, RestartSlot, decide_restart, new_restart


@dataclass
class Container:
    running: bool = True
    starts: int = 0  # starts after the restart was asked for
    started_at: float = 0.0


@dataclass
class World:
    """Desired state as the server stores it, the containers as the engine has them, what the server observed."""

    ids: list[str]
    desired_running: dict[str, bool] = field(default_factory=dict)
    requested: dict[str, float] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    observed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i in self.ids:
            self.desired_running[i] = True
            self.requested[i] = 0.0
            self.containers[i] = Container()
            self.observed[i] = "running"

    def agent_acts(self, which: str, now: float) -> None:
        """agent/converge.py's rules for `running` and `start_requested_at`."""
        container = self.containers[which]
        if not self.desired_running[which]:
            container.running = False
        elif not container.running and self.requested[which] > container.started_at:
            container.running, container.starts, container.started_at = True, container.starts + 1, now

    def report(self, which: str) -> None:
        self.observed[which] = "running" if self.containers[which].running else "exited"

    def slots(self) -> list[RestartSlot]:
        return [
            RestartSlot(id=i, name=f"s-web-{n + 1}", observed_state=self.observed[i]) for n, i in enumerate(self.ids)
        ]

    def down(self) -> int:
        return sum(1 for c in self.containers.values() if not c.running)


def _run(world: World, progress: RestartProgress, events: list[tuple[float, int, int, bool]], reload: bool) -> None:
    now = 1000.0
    previous_ready = 0.0
    for delay, acting, reporting, persist in events:
        now += delay
        if reload and persist:  # a server restart: only what was stored survives
            progress = RestartProgress.from_dict(progress.to_dict())
        step = decide_restart(progress, world.slots(), now)
        assert not step.gave_up
        if step.stop:  # a new batch only once the previous one ran again and the interval passed
            assert len(step.stop) <= progress.batch_size
            if previous_ready:
                assert now >= previous_ready + progress.interval_ms / 1000.0
        for i in step.stop:
            world.desired_running[i] = False
        for i in step.start:
            world.desired_running[i], world.requested[i] = True, now
        progress = step.progress
        previous_ready = progress.ready_at
        if step.finished:
            break
        world.agent_acts(world.ids[acting % len(world.ids)], now)
        assert world.down() <= progress.batch_size
        world.report(world.ids[reporting % len(world.ids)])
    else:  # the agent catches up: the restart ends
        for _ in range(10 * len(world.ids) + 10):
            now += 1.0 + progress.interval_ms / 1000.0
            step = decide_restart(progress, world.slots(), now)
            for i in step.stop:
                world.desired_running[i] = False
            for i in step.start:
                world.desired_running[i], world.requested[i] = True, now
            progress = step.progress
            if step.finished:
                break
            for i in world.ids:
                world.agent_acts(i, now)
                assert world.down() <= progress.batch_size
                world.report(i)
        assert step.finished and not step.gave_up
    assert [world.containers[i].starts for i in world.ids] == [1] * len(world.ids)
    assert world.down() == 0


@settings(max_examples=150, deadline=None)
@given(
    scale=st.integers(1, 6),
    batch=st.integers(1, 4),
    interval=st.sampled_from([0, 500, 3000]),
    events=st.lists(
        st.tuples(st.sampled_from([0.0, 0.2, 1.0, 4.0]), st.integers(0, 5), st.integers(0, 5), st.booleans()),
        max_size=80,
    ),
    reload=st.booleans(),
)
def test_a_rolling_restart_keeps_at_most_a_batch_down_and_restarts_each_container_once(
    scale: int, batch: int, interval: int, events: list[tuple[float, int, int, bool]], reload: bool
) -> None:
    ids = [f"c{n}" for n in range(scale)]
    _run(World(ids), new_restart(ids, batch_size=batch, interval_ms=interval), events, reload)


def test_a_plain_restart_is_one_batch_of_every_container() -> None:
    progress = new_restart(["a", "b", "c"])
    step = decide_restart(progress, [RestartSlot(i, i, "running") for i in "abc"], 10.0)
    assert step.stop == ("a", "b", "c") and step.progress.pending == ()


def test_the_interval_is_counted_from_when_the_batch_ran_again() -> None:
    progress = new_restart(["a", "b"], batch_size=1, interval_ms=2000)
    step = decide_restart(progress, [RestartSlot("a", "a", "running"), RestartSlot("b", "b", "running")], 10.0)
    assert step.stop == ("a",)
    step = decide_restart(step.progress, [RestartSlot("a", "a", "exited"), RestartSlot("b", "b", "running")], 11.0)
    assert step.start == ("a",)
    step = decide_restart(step.progress, [RestartSlot("a", "a", "running"), RestartSlot("b", "b", "running")], 12.0)
    assert step.progress.done == ("a",) and step.progress.ready_at == 12.0 and not step.stop
    assert "interval" in step.reason
    step = decide_restart(step.progress, [RestartSlot("a", "a", "running"), RestartSlot("b", "b", "running")], 13.9)
    assert not step.stop
    step = decide_restart(step.progress, [RestartSlot("a", "a", "running"), RestartSlot("b", "b", "running")], 14.0)
    assert step.stop == ("b",)


def test_an_unhealthy_container_holds_the_next_batch() -> None:
    progress = RestartProgress(pending=("b",), starting=("a",), batch_size=1, batch_at=10.0)
    slots = [RestartSlot("a", "a", "running", "unhealthy"), RestartSlot("b", "b", "running")]
    step = decide_restart(progress, slots, 20.0)
    assert not step.stop and step.progress.starting == ("a",) and "restarting a" in step.reason


def test_a_batch_not_back_within_the_deadline_ends_the_restart_and_leaves_nothing_stopped() -> None:
    progress = RestartProgress(pending=("c",), stopping=("a",), starting=("b",), batch_size=2, batch_at=10.0)
    slots = [RestartSlot("a", "web-1", "running"), RestartSlot("b", "web-2", "exited"), RestartSlot("c", "web-3")]
    step = decide_restart(progress, slots, 10.0 + progress.deadline_seconds + 1)
    assert step.gave_up and step.finished
    assert step.start == ("a",)  # asked to stop, asked to run again; b was already asked to start
    assert step.progress.finished
    assert "web-1 (running)" in step.reason and "web-2 (exited)" in step.reason


def test_removed_slots_are_dropped_and_a_second_request_joins_the_restart() -> None:
    progress = RestartProgress(pending=("c",), stopping=("a",), done=("d",), batch_size=1, batch_at=10.0)
    step = decide_restart(progress, [RestartSlot("a", "a", "running"), RestartSlot("d", "d", "running")], 11.0)
    assert step.progress.pending == () and step.progress.stopping == ("a",)
    joined = step.progress.with_slots(["a", "d", "e"])
    assert joined.pending == ("d", "e") and joined.done == () and joined.stopping == ("a",)


def test_bad_batch_size_or_interval_names_the_field() -> None:
    with pytest.raises(InvalidInput) as error:
        new_restart(["a"], batch_size=0)
    assert error.value.field == "batch_size"
    with pytest.raises(InvalidInput) as error:
        new_restart(["a"], interval_ms=-1)
    assert error.value.field == "interval_ms"
