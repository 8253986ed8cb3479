"""Volume affinity (orchestrator/volume_affinity.py): a container whose local stack or per-container volume holds
data on a usable host is placed there, a hard rule while that host is usable; otherwise the reason says why."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.entities import HostState
from corral.model.stack import ServiceSpec, VolumeSpec
from corral.orchestrator.reconciling import HostView
from corral.orchestrator.volume_affinity import Holder, affinity, local_volume_names

from .harness import ACTIVE, DISCONNECTED, RECONNECTING, run, service, slot, view

DATA = VolumeSpec(kind="volume", target="/data", source="app_data")
PER = VolumeSpec(kind="volume", target="/cache", source="app_cache", scope="container")
EXTERNAL = VolumeSpec(kind="volume", target="/shared", source="shared", scope="environment")


def with_volumes(spec: ServiceSpec, *volumes: VolumeSpec) -> ServiceSpec:
    return dataclasses.replace(spec, launch=dataclasses.replace(spec.launch, volumes=volumes))


def host(i: int, *volumes: str, state: HostState = ACTIVE, **fields: object) -> HostView:
    return HostView(
        id=f"h{i:02d}",
        name=f"host{i:02d}",
        state=state,
        arch="x86_64",
        volumes=frozenset(volumes),
        **fields,  # type: ignore[arg-type]
    )


def test_local_volume_names_are_the_docker_names_of_stack_and_per_container_volumes_only() -> None:
    bind = VolumeSpec(kind="bind", target="/etc/x", source="/srv/x")
    assert local_volume_names((DATA, PER, EXTERNAL, bind), 3) == ("app_cache_3", "app_data")


def test_a_new_container_goes_to_the_host_that_holds_its_stack_volume() -> None:
    spec = with_volumes(service(1), DATA)
    plan = run(spec, [], [host(1), host(2), host(3, "app_data")])
    assert [(s.index, s.host_id) for s in plan.place] == [(1, "h03")]


def test_each_index_follows_its_own_per_container_volume() -> None:
    spec = with_volumes(service(2), PER)
    plan = run(spec, [], [host(1, "app_cache_2"), host(2, "app_cache_1")])
    assert sorted((s.index, s.host_id) for s in plan.place) == [(1, "h02"), (2, "h01")]


def test_a_container_moved_off_a_clash_returns_only_to_its_volume_host() -> None:
    spec = with_volumes(service(1, ports=[80]), DATA)
    other = with_volumes(service(1, name="other", ports=[80]), DATA)
    mine = view(slot(1, "h01", spec), {spec.launch.config_hash(): spec.launch})
    holder = view(slot(1, "h01", other, id="o1"), {other.launch.config_hash(): other.launch}, observed_state="running")
    plan = run(spec, [mine], [host(1, "app_data"), host(2)], others=[holder])
    assert not plan.place and not plan.replace  # host02 is free, but its data is on host01
    assert any("keeps it on host01" in reason for _, reason in plan.unplaced)


def test_a_volume_host_that_cannot_take_it_leaves_it_unplaced_with_the_volume_named() -> None:
    spec = with_volumes(service(1, ports=[80]), DATA)
    cordoned = run(spec, [], [host(1, "app_data", schedulable=False), host(2)])
    assert not cordoned.place
    [(index, reason)] = cordoned.unplaced
    assert index == 1
    assert "its volume app_data keeps it on host01, where the data is" in reason
    assert "host01 is deactivated" in reason
    waiting = run(spec, [], [host(1, "app_data", state=RECONNECTING), host(2)])
    assert not waiting.place and "host01 is reconnecting" in waiting.unplaced[0][1]


def test_the_rule_lapses_when_the_volume_host_is_gone_or_disconnected() -> None:
    spec = with_volumes(service(1), DATA)
    plan = run(spec, [], [host(1, "app_data", state=DISCONNECTED), host(2)])
    assert [s.host_id for s in plan.place] == ["h02"]
    evacuating = run(spec, [], [host(1, "app_data", evacuating=True), host(2)])
    assert [s.host_id for s in evacuating.place] == ["h02"]


def test_environment_volumes_and_services_without_volumes_spread_as_before() -> None:
    spec = with_volumes(service(2), EXTERNAL)
    plan = run(spec, [], [host(1, "shared"), host(2)])
    assert sorted(s.host_id for s in plan.place) == ["h01", "h02"]
    plain = run(service(2), [], [host(1, "app_data"), host(2)])
    assert sorted(s.host_id for s in plain.place) == ["h01", "h02"]


def test_two_volumes_on_different_hosts_leave_no_host_and_say_so() -> None:
    other = VolumeSpec(kind="volume", target="/logs", source="app_logs")
    spec = with_volumes(service(1), DATA, other)
    plan = run(spec, [], [host(1, "app_data"), host(2, "app_logs")])
    assert not plan.place
    assert "volumes app_data, app_logs keeps it on no single host" in plan.unplaced[0][1]
    assert "different hosts" in plan.unplaced[0][1]


HOST_STATES = st.sampled_from([ACTIVE, ACTIVE, RECONNECTING, DISCONNECTED, HostState.ENGINE_DOWN])


@settings(max_examples=150, deadline=None)
@given(
    held=st.lists(st.tuples(st.booleans(), st.booleans(), HOST_STATES, st.booleans()), min_size=1, max_size=6),
    scale=st.integers(min_value=1, max_value=4),
    per_container=st.booleans(),
)
def test_property_placed_containers_land_on_a_usable_holder_whenever_one_exists(
    held: list[tuple[bool, bool, HostState, bool]], scale: int, per_container: bool
) -> None:
    """Whatever the hosts: a container is placed on a host holding its volume whenever some usable host holds it,
    elsewhere only when none does; and never on a host that takes no new containers."""
    volume = PER if per_container else DATA
    spec = with_volumes(service(scale), volume)
    views = []
    for i, (has_it, schedulable, state, evacuating) in enumerate(held, 1):
        names = {f"app_cache_{j}" for j in range(1, scale + 1)} | {"app_data"} if has_it else set()
        views.append(host(i, *names, state=state, schedulable=schedulable, evacuating=evacuating))
    plan = run(spec, [], views)
    by_id = {h.id: h for h in views}
    holders = [Holder(h.id, h.name, h.state, h.volumes, True, h.evacuating) for h in views]
    for placed in plan.place:
        chosen = by_id[placed.host_id]
        assert chosen.state is ACTIVE and chosen.schedulable and not chosen.evacuating
        pin = affinity(spec.launch.volumes, placed.index, holders)
        if pin is not None:
            assert placed.host_id in pin.hosts
    for index, reason in plan.unplaced:
        assert reason  # every index it cannot place says why
        if affinity(spec.launch.volumes, index, holders) is not None:
            assert "keeps it on" in reason
    assert {s.index for s in plan.place} | {i for i, _ in plan.unplaced} == set(range(1, scale + 1))
