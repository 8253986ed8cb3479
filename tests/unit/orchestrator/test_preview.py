"""The `up --plan` preview (orchestrator/preview.py, model/plan_preview.py): its accounting of every index, its
field diff (secrets by name only), and that it is what the reconciler decides over the same world."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.files import FileMount
from corral.model.plan_preview import HIDDEN, spec_changes
from corral.model.stack import Service, ServiceSpec, StackSpec
from corral.orchestrator.preview import World, preview_stack
from corral.orchestrator.scheduling import SlotView

from .harness import ACTIVE, DISCONNECTED, ENV, STACK, active_hosts, hosts, service, slot


def _stored(spec: ServiceSpec, position: int = 0, stack: str = STACK) -> Service:
    return Service(f"svc-{stack}-{spec.name}", f"stk-{stack}", ENV, stack, spec.name, spec, spec.scale, position)


def _running(index: int, host_id: str, spec: ServiceSpec, stack: str = STACK) -> SlotView:
    s = dataclasses.replace(slot(index, host_id, spec, id=f"{stack}-{spec.name}-{index}"), stack=stack)
    return SlotView(
        s,
        observed_state="running",
        observed_hash=s.config_hash,
        published_ports=spec.launch.published_ports(),
        labels=spec.launch.labels,
    )


def _world(host_views, services, slots) -> World:
    return World(
        ENV,
        "default",
        host_views,
        services,
        slots,
        stack_ids={s.stack: s.stack_id for s in services},
    )


def test_a_new_stack_on_two_hosts_spreads_and_explains_the_rest() -> None:
    proposed = StackSpec(STACK, (service(3, ports=[80]), service(2, name="db")))
    preview = preview_stack(_world(active_hosts(2), [], []), proposed)
    assert preview.create and [(s.name, s.action) for s in preview.services] == [("web", "create"), ("db", "create")]
    web = [(c.index, c.host) for c in preview.containers if c.service == "web"]
    assert sorted(web) == [(1, "host01"), (2, "host02")]
    assert [(u.service, u.indexes) for u in preview.unplaced] == [("web", (3,))]
    assert preview.unplaced[0].reason.startswith("#3: ") and "80/tcp" in preview.unplaced[0].reason


def test_a_lost_hosts_container_is_recreated_elsewhere_from_that_host() -> None:
    web = service(1)
    world = _world(hosts(DISCONNECTED, ACTIVE), [_stored(web)], [_running(1, "h01", web)])
    preview = preview_stack(world, StackSpec(STACK, (web,)))
    assert [s.action for s in preview.services] == ["unchanged"]
    [container] = preview.containers
    assert (container.action, container.index, container.host, container.from_host) == (
        "recreate",
        1,
        "host02",
        "host01",
    )


def test_a_removed_service_removes_its_containers_and_frees_its_ports() -> None:
    old = service(1, name="old", ports=[80])
    new = service(1, name="new", ports=[80])
    world = _world(active_hosts(1), [_stored(old)], [_running(1, "h01", old)])
    preview = preview_stack(world, StackSpec(STACK, (new,)))
    assert {(s.name, s.action) for s in preview.services} == {("new", "create"), ("old", "remove")}
    assert {(c.action, c.service, c.host) for c in preview.containers} == {
        ("remove", "old", "host01"),
        ("create", "new", "host01"),
    }
    assert preview.unplaced == ()


def test_another_stacks_ports_count() -> None:
    other = service(1, name="proxy", ports=[80])
    world = _world(active_hosts(1), [_stored(other, stack="edge")], [_running(1, "h01", other, stack="edge")])
    preview = preview_stack(world, StackSpec(STACK, (service(1, ports=[80]),)))
    assert preview.containers == () and preview.unplaced[0].reason.startswith("#1: ")
    assert "80/tcp" in preview.unplaced[0].reason


def test_field_changes_name_secrets_and_files_but_never_their_values() -> None:
    old = service(2)
    launch = dataclasses.replace(
        old.launch,
        image="nginx:2",
        environment=(("API_TOKEN", "s3cret-new"), ("MODE", "fast")),
        files=(
            FileMount("secret", "db_pw", "/run/secrets/db_pw"),
            FileMount("config", "conf", "/etc/app.conf", content="c2VjcmV0LWJ5dGVz"),
        ),
    )
    new = dataclasses.replace(old, launch=launch, scale=3)
    before = dataclasses.replace(old, launch=dataclasses.replace(old.launch, environment=(("API_TOKEN", "s3cret"),)))
    changes = {c.field: (c.old, c.new) for c in spec_changes(before, 2, new)}
    assert changes["scale"] == ("2", "3")
    assert changes["launch.image"] == ("nginx", "nginx:2")
    assert changes["launch.environment.API_TOKEN"] == (HIDDEN, HIDDEN)
    assert changes["launch.environment.MODE"] == (None, "fast")
    assert changes["launch.files./run/secrets/db_pw"] == (None, "secret db_pw")
    assert changes["launch.files./etc/app.conf"][1].startswith("config conf (sha256 ")
    assert "s3cret" not in repr(changes) and "c2VjcmV0" not in repr(changes)
    assert spec_changes(old, 2, old) == ()


@settings(max_examples=60, deadline=None)
@given(
    states=st.lists(st.sampled_from([ACTIVE, ACTIVE, DISCONNECTED]), min_size=0, max_size=4),
    running=st.integers(0, 5),
    scale=st.integers(0, 6),
    port=st.booleans(),
    change=st.booleans(),
)
def test_every_index_is_accounted_for_and_nothing_is_mutated(
    states: list, running: int, scale: int, port: bool, change: bool
) -> None:
    """Each index 1..scale is covered by a container that stays, is created or recreated, or is unplaced with a
    reason; containers above the scale are removed; two containers publishing one port never share a host."""
    host_views = hosts(*states)
    if port:  # a valid world to start from: one container publishing the port per host
        running = min(running, len(host_views))
    current = service(running, ports=[80] if port else [])
    slots = [
        _running(i, host_views[(i - 1) % len(host_views)].id, current)
        for i in range(1, running + 1 if host_views else 1)
    ]
    world = _world(host_views, [_stored(current)] if slots else [], slots)
    proposed = service(scale, ports=[80] if port else [], image="nginx:2" if change else "nginx")
    preview = preview_stack(world, StackSpec(STACK, (proposed,)))
    assert world.slots == slots  # pure: the input is untouched
    touched = {c.index for c in preview.containers if c.action in ("create", "recreate")}
    unplaced = {i for u in preview.unplaced for i in u.indexes}
    staying = {v.slot.index for v in slots if v.slot.index <= scale} - touched - unplaced
    assert touched | unplaced | staying >= set(range(1, scale + 1))
    assert not touched & unplaced
    removed = {c.index for c in preview.containers if c.action == "remove"}
    assert {v.slot.index for v in slots if v.slot.index > scale} <= removed
    if port:
        placed = [c.host_id for c in preview.containers if c.action in ("create", "recreate")]
        kept = [v.slot.host_id for v in slots if v.slot.index in staying]
        assert len(placed + kept) == len(set(placed + kept))
    assert preview_stack(world, StackSpec(STACK, (proposed,))) == preview  # deterministic


def test_a_sidekick_unit_is_previewed_on_one_host_per_index() -> None:
    primary = dataclasses.replace(service(2, ports=[80]), sidekicks=("data",))
    sidekick = dataclasses.replace(service(2, name="data"), sidekick_of="web")
    preview = preview_stack(_world(active_hosts(3), [], []), StackSpec(STACK, (primary, sidekick)))
    hosts_of = {(c.service, c.index): c.host for c in preview.containers if c.action == "create"}
    assert set(hosts_of) == {("web", 1), ("web", 2), ("data", 1), ("data", 2)}
    assert hosts_of[("web", 1)] == hosts_of[("data", 1)] and hosts_of[("web", 2)] == hosts_of[("data", 2)]
    assert hosts_of[("web", 1)] != hosts_of[("web", 2)]
    assert preview.unplaced == ()
