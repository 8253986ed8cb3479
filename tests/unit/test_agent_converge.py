"""The agent's convergence: the pure planner (tables + properties), the executor's memory, the slot reports."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.agent import converge
from corral.agent.converge import (
    Action,
    ActionKind,
    Converger,
    SlotReporter,
    is_ours,
    parse_desired,
    plan_convergence,
)
from corral.agent.pulls import ImagePuller
from corral.model.entities import ObservedContainer
from corral.model.errors import Conflict, InvalidInput, Unavailable
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig
from corral.runtime import labels

ENV = "env-a"
OTHER_ENV = "env-b"
IMAGE = "corral/busybox:latest"
ONCE = LaunchConfig(image=IMAGE, labels=(("io.rancher.container.start_once", "true"),))


def want(
    slot_id: str = "s1",
    *,
    config_hash: str = "h1",
    running: bool = True,
    start_requested_at: float = 0.0,
    index: int = 1,
    environment_id: str = ENV,
    launch: LaunchConfig | None = None,
) -> DesiredContainer:
    slot = ContainerSlot(
        id=slot_id,
        environment_id=environment_id,
        stack="st",
        service=f"svc{slot_id}",
        index=index,
        host_id="host-1",
        config_hash=config_hash,
    )
    launch = launch if launch is not None else LaunchConfig(image=IMAGE)
    return DesiredContainer(slot, launch, running=running, start_requested_at=start_requested_at)


def seen(
    docker_id: str,
    slot_id: str | None = "s1",
    *,
    state: str = "running",
    config_hash: str = "h1",
    environment_id: str | None = ENV,
    name: str | None = None,
    created: float = 100.0,
) -> ObservedContainer:
    found: dict[str, str] = {}
    if environment_id is not None:
        found[labels.ENVIRONMENT] = environment_id
    if slot_id is not None:
        found[labels.CONTAINER] = slot_id
        found[labels.CONFIG_HASH] = config_hash
    return ObservedContainer(
        docker_id=docker_id,
        name=name if name is not None else (f"st-svc{slot_id}-1" if slot_id else docker_id),
        image=IMAGE,
        state=state,
        labels=found,
        created=created,
    )


def kinds(actions: Sequence[Action]) -> list[tuple[str, str]]:
    return [(a.kind.value, a.docker_id or a.slot_id) for a in actions]


def plan(
    desired: Sequence[DesiredContainer],
    observed: Sequence[ObservedContainer],
    started_at: Mapping[str, float] | None = None,
    environment_id: str | None = ENV,
) -> list[Action]:
    return plan_convergence(desired, observed, started_at or {}, environment_id=environment_id)


# -- tables


@pytest.mark.parametrize(
    ("desired", "observed", "started_at", "expected"),
    [
        pytest.param([want()], [], {}, [("create", "s1")], id="missing-is-created"),
        pytest.param([want(running=False)], [], {}, [("create", "s1")], id="missing-and-stopped-is-created"),
        pytest.param([want()], [seen("d1")], {}, [], id="converged-running"),
        pytest.param([want()], [seen("d1", config_hash="h0")], {}, [("recreate", "d1")], id="hash-differs"),
        pytest.param([want()], [seen("d1", state="dead")], {}, [("recreate", "d1")], id="dead-is-recreated"),
        pytest.param([want(running=False)], [seen("d1")], {}, [("stop", "d1")], id="stop-running"),
        pytest.param(
            [want(running=False)], [seen("d1", state="restarting")], {}, [("stop", "d1")], id="stop-restarting"
        ),
        pytest.param([want(running=False)], [seen("d1", state="exited")], {}, [], id="stopped-stays-stopped"),
        pytest.param([want(running=False)], [seen("d1", state="created")], {}, [], id="created-stays-created"),
        pytest.param([want()], [seen("d1", state="created")], {}, [("start", "d1")], id="never-started-is-started"),
        pytest.param(
            [want()], [seen("d1", state="exited")], {"d1": 150.0}, [("start", "d1")], id="exited-is-restarted-at-scale"
        ),
        pytest.param(
            [want(launch=ONCE)], [seen("d1", state="exited")], {"d1": 150.0}, [], id="start-once-stays-exited"
        ),
        pytest.param(
            [want(launch=LaunchConfig(image=IMAGE, restart="on-failure"))],
            [seen("d1", state="exited")],
            {"d1": 150.0},
            [],
            id="docker-restart-policy-decides-about-exited",
        ),
        pytest.param([want()], [seen("d1", state="restarting")], {}, [], id="restart-policy-decides"),
        pytest.param([want()], [seen("d1", state="removing")], {}, [], id="removing-is-left-to-finish"),
        pytest.param(
            [want(start_requested_at=200.0, launch=ONCE)],
            [seen("d1", state="exited")],
            {"d1": 150.0},
            [("start", "d1")],
            id="start-requested-after-last-start",
        ),
        pytest.param(
            [want(start_requested_at=200.0, launch=ONCE)],
            [seen("d1", state="exited")],
            {"d1": 250.0},
            [],
            id="start-request-already-honoured",
        ),
        pytest.param(
            [want(start_requested_at=200.0, launch=ONCE)],
            [seen("d1", state="exited", created=300.0)],
            {},
            [],
            id="created-after-the-request-needs-no-start",
        ),
        pytest.param(
            [want(start_requested_at=200.0, launch=ONCE)],
            [seen("d1", state="exited", created=100.0)],
            {},
            [("start", "d1")],
            id="unknown-start-time-falls-back-to-created",
        ),
        pytest.param(
            [want(start_requested_at=200.0, launch=ONCE)],
            [seen("d1", state="running")],
            {"d1": 1.0},
            [],
            id="running-is-left",
        ),
        pytest.param([], [seen("d1")], {}, [("remove", "d1")], id="undesired-is-removed"),
        pytest.param([], [seen("d1", slot_id=None)], {}, [], id="foreign-with-corral-environment-is-untouched"),
        pytest.param([], [seen("d1", slot_id=None, environment_id=None)], {}, [], id="foreign-is-untouched"),
        pytest.param([], [seen("d1", environment_id=OTHER_ENV)], {}, [], id="other-environment-is-untouched"),
        pytest.param(
            [want()],
            [seen("d1", environment_id=OTHER_ENV)],
            {},
            [],
            id="a-desired-slot-id-is-ours-whatever-its-environment",
        ),
        pytest.param(
            [want()],
            [seen("d1", state="exited"), seen("d2")],
            {},
            [("remove", "d1")],
            id="duplicates-keep-the-running-one",
        ),
        pytest.param(
            [want()],
            [seen("d1"), seen("d2", config_hash="h0")],
            {},
            [("remove", "d2")],
            id="duplicates-keep-the-current-config",
        ),
        pytest.param(
            [want()],
            [seen("d1", created=50.0, name="other"), seen("d2", created=60.0)],
            {},
            [("remove", "d1")],
            id="duplicates-keep-the-one-with-the-slot-name",
        ),
        pytest.param(
            [want()],
            [seen("d1", config_hash="h0"), seen("d2", config_hash="h0", state="exited")],
            {},
            [("remove", "d2"), ("recreate", "d1")],
            id="duplicates-then-recreate-the-kept-one",
        ),
        pytest.param(
            [want("s1"), want("s1", config_hash="h9")], [seen("d1")], {}, [], id="a-repeated-slot-id-the-first-counts"
        ),
    ],
)
def test_planner_table(
    desired: list[DesiredContainer],
    observed: list[ObservedContainer],
    started_at: dict[str, float],
    expected: list[tuple[str, str]],
) -> None:
    assert kinds(plan(desired, observed, started_at)) == expected


def test_a_held_automatic_restart_waits_and_a_start_request_does_not() -> None:
    exited = [seen("d1", state="exited")]
    assert plan_convergence([want()], exited, {"d1": 150.0}, environment_id=ENV, restart_held={"s1"}) == []
    (action,) = plan_convergence([want()], exited, {"d1": 150.0}, environment_id=ENV)
    assert action.automatic and "keep the service at scale" in action.reason
    requested = plan_convergence(
        [want(start_requested_at=200.0)], exited, {"d1": 150.0}, environment_id=ENV, restart_held={"s1"}
    )
    assert kinds(requested) == [("start", "d1")] and not requested[0].automatic


def test_restart_backoff_is_bounded_and_forgets_a_container_that_stays_up() -> None:
    backoff = converge.RestartBackoff()
    assert backoff.held(0.0) == {}
    delays = []
    now = 0.0
    for _ in range(10):
        backoff.restarted("s1", now)
        (wait,) = backoff.held(now).values()
        delays.append(wait)
        now += wait
    first = converge.FIRST_RESTART_DELAY
    assert delays[:3] == [first, 2 * first, 4 * first]
    assert max(delays) == converge.MAX_RESTART_DELAY
    backoff.observe({"s1"}, running={"s1"}, now=now + converge.RESTART_RESET_SECONDS)
    assert backoff.count("s1") == 0
    backoff.restarted("s2", 0.0)
    backoff.observe({"s1"}, running=set(), now=1.0)
    assert backoff.count("s2") == 0  # no longer desired


def test_without_an_environment_every_corral_container_is_ours() -> None:
    observed = [seen("d1", environment_id=OTHER_ENV), seen("d2", slot_id=None)]
    assert kinds(plan([], observed, environment_id=None)) == [("remove", "d1")]


def test_removals_come_first_then_stops_recreates_creates_starts() -> None:
    desired = [
        want("s1"),
        want("s2", running=False),
        want("s3", config_hash="new"),
        want("s4"),
    ]
    observed = [
        seen("d0", slot_id="gone"),
        seen("d2", slot_id="s2"),
        seen("d3", slot_id="s3"),
        seen("d4", slot_id="s4", state="created"),
    ]
    actions = plan(desired, observed)
    assert [a.kind for a in actions] == [
        ActionKind.REMOVE,
        ActionKind.STOP,
        ActionKind.RECREATE,
        ActionKind.CREATE,
        ActionKind.START,
    ]
    assert all(a.reason for a in actions)
    create = actions[3]
    assert create.desired is not None and create.desired.slot.id == "s1" and create.starts
    assert not plan([want("s1", running=False)], [])[0].starts
    assert actions[1].starts is False and actions[4].starts is True


def test_is_ours() -> None:
    assert is_ours(seen("d"), ENV)
    assert not is_ours(seen("d", slot_id=None), ENV)
    assert not is_ours(seen("d", environment_id=OTHER_ENV), ENV)
    assert is_ours(seen("d", environment_id=OTHER_ENV), ENV, {"s1"})
    assert is_ours(seen("d", environment_id=None), None)


# -- properties

SLOTS = ["s0", "s1", "s2", "s3"]
HASHES = ["h0", "h1"]
STATES = ["created", "running", "restarting", "paused", "exited", "dead", "removing"]
NOW = 10_000.0


@st.composite
def desired_sets(draw: st.DrawFn) -> list[DesiredContainer]:
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(SLOTS),
                st.sampled_from(HASHES),
                st.booleans(),
                st.sampled_from([0.0, 150.0, 500.0]),
            ),
            max_size=6,
        )
    )
    return [want(s, config_hash=h, running=r, start_requested_at=t) for s, h, r, t in entries]


@st.composite
def observed_sets(draw: st.DrawFn) -> tuple[list[ObservedContainer], dict[str, float]]:
    rows = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.sampled_from([*SLOTS, "s-old"])),
                st.sampled_from([ENV, OTHER_ENV, None]),
                st.sampled_from(HASHES),
                st.sampled_from(STATES),
                st.sampled_from([50.0, 100.0, 200.0, 600.0]),
                st.one_of(st.none(), st.sampled_from([0.0, 120.0, 300.0, 700.0])),
            ),
            max_size=8,
        )
    )
    observed: list[ObservedContainer] = []
    started: dict[str, float] = {}
    for number, (slot_id, env, config_hash, state, created, start) in enumerate(rows):
        docker_id = f"d{number}"
        observed.append(
            seen(docker_id, slot_id, state=state, config_hash=config_hash, environment_id=env, created=created)
        )
        if start is not None:
            started[docker_id] = max(start, created)
    return observed, started


def simulate(
    observed: Sequence[ObservedContainer], started_at: Mapping[str, float], actions: Sequence[Action]
) -> tuple[list[ObservedContainer], dict[str, float]]:
    """What an ideal engine looks like after the actions (every action succeeds, at time NOW)."""
    containers = {c.docker_id: c for c in observed}
    started = dict(started_at)
    numbers = itertools.count()

    def create(action: Action) -> None:
        assert action.desired is not None
        slot = action.desired.slot
        docker_id = f"new{next(numbers)}"
        found = {
            labels.CONTAINER: slot.id,
            labels.ENVIRONMENT: slot.environment_id,
            labels.CONFIG_HASH: slot.config_hash,
        }
        state = "running" if action.desired.running else "created"
        containers[docker_id] = ObservedContainer(docker_id, slot.name, IMAGE, state, labels=found, created=NOW)
        if action.desired.running:
            started[docker_id] = NOW

    for action in actions:
        if action.kind is not ActionKind.CREATE:
            assert action.docker_id in containers, f"{action} acts on a container that is not there"
        if action.kind is ActionKind.REMOVE:
            del containers[action.docker_id]
        elif action.kind is ActionKind.STOP:
            containers[action.docker_id] = replace(containers[action.docker_id], state="exited")
        elif action.kind is ActionKind.START:
            containers[action.docker_id] = replace(containers[action.docker_id], state="running")
            started[action.docker_id] = NOW
        elif action.kind is ActionKind.RECREATE:
            del containers[action.docker_id]
            create(action)
        else:
            create(action)
    return list(containers.values()), started


@settings(max_examples=400, deadline=None)
@given(desired=desired_sets(), world=observed_sets())
def test_applying_the_plan_converges_in_one_round(
    desired: list[DesiredContainer], world: tuple[list[ObservedContainer], dict[str, float]]
) -> None:
    observed, started = world
    actions = plan(desired, observed, started)
    after, started_after = simulate(observed, started, actions)
    assert plan(desired, after, started_after) == []


@settings(max_examples=400, deadline=None)
@given(desired=desired_sets(), world=observed_sets())
def test_foreign_containers_are_never_touched(
    desired: list[DesiredContainer], world: tuple[list[ObservedContainer], dict[str, float]]
) -> None:
    observed, started = world
    slot_ids = {d.slot.id for d in desired}

    def mine(c: ObservedContainer) -> bool:  # spelt out here, not with is_ours: the property checks it
        slot_id = c.labels.get(labels.CONTAINER)
        return slot_id is not None and (c.labels.get(labels.ENVIRONMENT) == ENV or slot_id in slot_ids)

    foreign = {c.docker_id: c for c in observed if not mine(c)}
    actions = plan(desired, observed, started)
    assert not {a.docker_id for a in actions} & set(foreign)
    after, _ = simulate(observed, started, actions)
    assert {c.docker_id: c for c in after if c.docker_id in foreign} == foreign
    # Whatever a container's labels, only one with io.corral.container is ever acted on.
    assert all(labels.CONTAINER in c.labels for c in observed if c.docker_id in {a.docker_id for a in actions})


@settings(max_examples=400, deadline=None)
@given(desired=desired_sets(), world=observed_sets())
def test_after_applying_each_desired_slot_has_exactly_one_container_and_no_other_remains(
    desired: list[DesiredContainer], world: tuple[list[ObservedContainer], dict[str, float]]
) -> None:
    observed, started = world
    actions = plan(desired, observed, started)
    assert len({a.docker_id for a in actions if a.docker_id}) == len([a for a in actions if a.docker_id])
    after, _ = simulate(observed, started, actions)
    slot_ids = {d.slot.id for d in desired}
    ours = [c for c in after if is_ours(c, ENV, slot_ids)]
    per_slot = [c.labels[labels.CONTAINER] for c in ours]
    assert sorted(per_slot) == sorted(slot_ids)
    first = {d.slot.id: d for d in reversed(desired)}
    for container in ours:
        wanted = first[container.labels[labels.CONTAINER]]
        assert container.labels[labels.CONFIG_HASH] == wanted.slot.config_hash
        if not wanted.running:
            assert container.state not in converge.ACTIVE_STATES


# -- parsing the desired message


def test_parse_desired_round_trips_and_refuses_a_partial_set() -> None:
    entries = [want("s1").to_dict(), want("s2", running=False, start_requested_at=5.0).to_dict()]
    assert parse_desired({"containers": entries}) == [want("s1"), want("s2", running=False, start_requested_at=5.0)]
    assert parse_desired({"containers": []}) == []
    with pytest.raises(InvalidInput, match="containers must be a list"):
        parse_desired({})
    broken = dict(entries[1], slot={"id": "s2"})
    with pytest.raises(InvalidInput, match=r"containers\[1\] is malformed"):
        parse_desired({"containers": [entries[0], broken]})
    with pytest.raises(InvalidInput, match=r"containers\[0\] must be an object"):
        parse_desired({"containers": ["nope"]})


# -- slot reports


def test_slot_reporter_sends_changes_and_clears_once_fixed() -> None:
    reporter = SlotReporter()
    reporter.new_connection()
    assert reporter.updates({}, ["s1", "s2"]) == []
    assert reporter.updates({"s1": "image x is not present on this host"}, ["s1", "s2"]) == [
        ("s1", "image x is not present on this host")
    ]
    assert reporter.updates({"s1": "image x is not present on this host"}, ["s1", "s2"]) == []
    assert reporter.updates({"s1": "port taken"}, ["s1", "s2"]) == [("s1", "port taken")]
    assert reporter.updates({}, ["s1", "s2"]) == [("s1", "")]
    assert reporter.updates({}, ["s1", "s2"]) == []


def test_slot_reporter_repeats_what_it_ever_reported_on_a_new_connection() -> None:
    reporter = SlotReporter()
    reporter.new_connection()
    reporter.updates({"s1": "broken", "s2": "broken too"}, ["s1", "s2", "s3"])
    reporter.updates({"s1": "broken"}, ["s1", "s2", "s3"])  # s2 fixed: "" sent on this connection
    reporter.new_connection()
    assert reporter.updates({"s1": "broken"}, ["s1", "s2", "s3"]) == [("s1", "broken"), ("s2", "")]
    assert reporter.updates({"s1": "broken"}, ["s1", "s2", "s3"]) == []
    # A slot no longer desired is forgotten.
    reporter.updates({}, ["s3"])
    reporter.new_connection()
    assert reporter.updates({}, ["s1", "s3"]) == []


# -- the executor, with an in-memory engine


class FakeEngine:
    """Stands in for DockerEngine + runtime/containers.py: a dict of containers, scripted failures."""

    def __init__(self) -> None:
        self.containers_by_id: dict[str, ObservedContainer] = {}
        self.started: dict[str, float] = {}
        self.fail: dict[str, Exception] = {}  # slot name -> error raised by create/start
        self.calls: list[str] = []
        self.clock = 1000.0
        self.down = False
        self._ids = itertools.count()

    def containers(self, *, restart_counts: bool = True) -> list[ObservedContainer]:
        if self.down:
            raise Unavailable("docker engine is not reachable")
        return list(self.containers_by_id.values())

    def close(self) -> None:
        pass

    # runtime/containers.py stand-ins
    def ensure_image(self, _engine: Any, image: str, **_: Any) -> None:
        self.calls.append(f"image {image}")

    def create_container(self, _engine: Any, desired: DesiredContainer, **_: Any) -> str:
        self.calls.append(f"create {desired.slot.name}")
        if desired.slot.name in self.fail:
            raise self.fail[desired.slot.name]
        docker_id = f"c{next(self._ids)}"
        found = {
            labels.CONTAINER: desired.slot.id,
            labels.ENVIRONMENT: desired.slot.environment_id,
            labels.CONFIG_HASH: desired.slot.config_hash,
        }
        self.containers_by_id[docker_id] = ObservedContainer(
            docker_id, desired.slot.name, IMAGE, "created", labels=found, created=self.clock
        )
        return docker_id

    def start_container(self, _engine: Any, docker_id: str, *, name: str = "") -> None:
        self.calls.append(f"start {docker_id}")
        container = self.containers_by_id[docker_id]
        if container.name in self.fail:
            raise self.fail[container.name]
        self.containers_by_id[docker_id] = replace(container, state="running")
        self.started[docker_id] = self.clock

    def stop_container(self, _engine: Any, docker_id: str, _grace: float | None = None, *, name: str = "") -> None:
        self.calls.append(f"stop {docker_id}")
        self.containers_by_id[docker_id] = replace(self.containers_by_id[docker_id], state="exited")

    def remove_container(self, _engine: Any, docker_id: str, _grace: float | None = None, *, name: str = "") -> None:
        self.calls.append(f"remove {docker_id}")
        self.containers_by_id.pop(docker_id, None)

    def started_at(self, _engine: Any, docker_id: str) -> float | None:
        self.calls.append(f"inspect {docker_id}")
        return self.started.get(docker_id, 0.0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine()
    for name in ("ensure_image", "create_container", "start_container", "stop_container", "remove_container"):
        monkeypatch.setattr(converge.runtime, name, getattr(engine, name))
    monkeypatch.setattr(converge.runtime, "started_at", engine.started_at)
    return engine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_failure_does_not_stop_the_others_and_is_retried_after_a_delay(fake: FakeEngine) -> None:
    clock = Clock()
    converger = Converger(fake, clock=clock)  # type: ignore[arg-type]
    fake.fail["st-svcs1-1"] = Conflict("the name st-svcs1-1 is taken by container abc, which Corral did not create")
    desired = [want("s1"), want("s2")]
    report = converger.converge(desired, ENV)
    assert report.problems == {"s1": "the name st-svcs1-1 is taken by container abc, which Corral did not create"}
    assert [c.name for c in fake.containers_by_id.values()] == ["st-svcs2-1"]

    # Within the retry delay the failing slot is left alone, its reason kept.
    fake.calls.clear()
    clock.now += 0.5
    report = converger.converge(desired, ENV)
    assert fake.calls == [] and report.problems == {"s1": fake.fail["st-svcs1-1"].message}
    assert [a.kind for a in report.actions] == [ActionKind.CREATE] and report.results == ()

    # After it, or at once when the server sends a desired set again, it is retried.
    del fake.fail["st-svcs1-1"]
    converger.retry_now()
    report = converger.converge(desired, ENV)
    assert report.problems == {}
    assert sorted(c.name for c in fake.containers_by_id.values()) == ["st-svcs1-1", "st-svcs2-1"]
    assert converger.converge(desired, ENV).actions == ()


def test_retry_delay_grows_and_is_capped(fake: FakeEngine) -> None:
    clock = Clock()
    converger = Converger(fake, clock=clock, max_retry_seconds=4.0)  # type: ignore[arg-type]
    fake.fail["st-svcs1-1"] = Unavailable("engine hiccup")
    attempts: list[float] = []
    while clock.now < 20:
        before = len(fake.calls)
        converger.converge([want("s1")], ENV)
        if len(fake.calls) > before:
            attempts.append(clock.now)
        clock.now += 0.5
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[:3] == [1.0, 2.0, 4.0] and set(gaps[3:]) == {4.0}


def test_an_engine_that_cannot_be_listed_changes_nothing(fake: FakeEngine) -> None:
    converger = Converger(fake)  # type: ignore[arg-type]
    fake.down = True
    with pytest.raises(Unavailable):
        converger.converge([want("s1")], ENV)
    assert fake.calls == []


def test_a_start_request_is_honoured_once_even_if_the_engine_clock_lags(fake: FakeEngine) -> None:
    converger = Converger(fake)  # type: ignore[arg-type]
    fake.clock = 800.0
    converger.converge([want("s1", launch=ONCE)], ENV)
    (docker_id,) = fake.containers_by_id
    fake.stop_container(None, docker_id)
    fake.clock = 900.0  # the engine's clock is behind the server's
    request = [want("s1", start_requested_at=950.0, launch=ONCE)]
    report = converger.converge(request, ENV)
    assert [a.kind for a in report.actions] == [ActionKind.START]
    assert fake.started[docker_id] == 900.0 < 950.0
    fake.stop_container(None, docker_id)  # it exits again (a one-shot job)
    fake.calls.clear()
    assert converger.converge(request, ENV).actions == ()
    assert fake.calls == []  # nothing to inspect either: the request was honoured


def test_exited_containers_are_inspected_only_when_a_start_request_may_concern_them(fake: FakeEngine) -> None:
    converger = Converger(fake)  # type: ignore[arg-type]
    converger.converge([want("s1", launch=ONCE)], ENV)
    (docker_id,) = fake.containers_by_id
    fake.stop_container(None, docker_id)
    fake.calls.clear()
    converger.converge([want("s1", start_requested_at=500.0, launch=ONCE)], ENV)  # created at 1000: nothing to ask
    assert fake.calls == []
    converger.converge([want("s1", start_requested_at=5000.0, launch=ONCE)], ENV)
    assert fake.calls == [f"inspect {docker_id}", f"start {docker_id}"]


def test_an_exited_container_is_restarted_with_a_growing_delay_and_the_wait_is_reported(fake: FakeEngine) -> None:
    now = [0.0]
    converger = Converger(fake, clock=lambda: now[0])  # type: ignore[arg-type]
    converger.converge([want("s1")], ENV)
    (docker_id,) = fake.containers_by_id
    fake.stop_container(None, docker_id)  # it crashed
    report = converger.converge([want("s1")], ENV)
    assert [(r.action.kind, r.action.automatic, r.error) for r in report.results] == [(ActionKind.START, True, "")]
    fake.stop_container(None, docker_id)  # and again at once: the next restart waits
    report = converger.converge([want("s1")], ENV)
    assert report.results == ()
    assert report.problems["s1"].startswith("exited again after 1 automatic restarts; next try in 5 s")
    now[0] += converge.FIRST_RESTART_DELAY
    report = converger.converge([want("s1")], ENV)
    assert [r.action.kind for r in report.results] == [ActionKind.START] and report.problems == {}


def test_a_recreate_checks_the_image_before_removing(fake: FakeEngine) -> None:
    converger = Converger(fake)  # type: ignore[arg-type]
    converger.converge([want("s1")], ENV)
    (old,) = fake.containers_by_id
    fake.calls.clear()
    converger.converge([want("s1", config_hash="h2")], ENV)
    assert fake.calls[:2] == [f"image {IMAGE}", f"remove {old}"]
    assert [c.labels[labels.CONFIG_HASH] for c in fake.containers_by_id.values()] == ["h2"]


def unit_member(slot_id: str, stack: str, image: str, *, volumes_from: tuple[str, ...] = ()) -> DesiredContainer:
    slot = ContainerSlot(slot_id, "env", stack, slot_id, 1, "host-1", "h1")
    return DesiredContainer(slot, LaunchConfig(image=image, volumes_from=volumes_from))


def test_a_hanging_pull_of_one_stack_does_not_hold_up_another_stacks_containers(
    fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def pull(_engine: Any, image: str, _credential: Any) -> str:
        release.wait(30)  # a registry that accepts the connection and does not answer
        return ""

    present = {"corral/busybox:latest"}
    monkeypatch.setattr(converge.runtime, "image_present", lambda _engine, image: image in present)
    done = threading.Event()
    puller = ImagePuller(fake, pull=pull, on_done=done.set)  # type: ignore[arg-type]
    converger = Converger(fake, puller=puller)  # type: ignore[arg-type]
    wanted = [
        unit_member("a-main", "a", "hangs:1"),
        unit_member("a-side", "a", "corral/busybox:latest", volumes_from=("a-main",)),
        unit_member("b-web", "b", "corral/busybox:latest"),
    ]
    report = converger.converge(wanted, "env")  # returns while the pull hangs (until `release`)
    assert "create b-b-web-1" in fake.calls
    assert report.problems["a-main"] == "waiting for image hangs:1: pull started"
    assert "create a-a-main-1" not in fake.calls
    release.set()
    assert done.wait(10)
    present.add("hangs:1")
    converger.retry_now()
    report = converger.converge(wanted, "env")
    assert "create a-a-main-1" in fake.calls
    assert "a-main" not in report.problems
