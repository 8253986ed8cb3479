"""Sidekick units on the agent: reference order, recreating dependents, Docker's terms for the references."""

from __future__ import annotations

import pytest

from corral.agent.converge import ActionKind, plan_convergence
from corral.agent.units import arrange_unit_actions
from corral.model.entities import ObservedContainer
from corral.model.errors import InvalidInput
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig
from corral.runtime import labels
from corral.runtime.containers import create_arguments
from corral.runtime.units import UNIT_TARGETS, find_target, recorded_targets, unit_options

ENV = "env-a"
IMAGE = "corral/busybox:latest"
WEB = LaunchConfig(image=IMAGE)
DATA = LaunchConfig(image=IMAGE, command=("sleep", "1000"))
HELPER = LaunchConfig(image=IMAGE, volumes_from=("data",), network_mode="service:web")


def want(service: str, launch: LaunchConfig, index: int = 1) -> DesiredContainer:
    slot = ContainerSlot(
        id=f"{service}{index}",
        environment_id=ENV,
        stack="app",
        service=service,
        index=index,
        host_id="h1",
        config_hash=launch.config_hash(),
    )
    return DesiredContainer(slot, launch)


def seen(entry: DesiredContainer, docker_id: str, *, stale: bool = False, targets: str = "") -> ObservedContainer:
    s = entry.slot
    found = {
        labels.ENVIRONMENT: ENV,
        labels.STACK: s.stack,
        labels.SERVICE: s.service,
        labels.CONTAINER: s.id,
        labels.SERVICE_INDEX: str(s.index),
        labels.CONFIG_HASH: "old" if stale else s.config_hash,
    }
    if targets:
        found[UNIT_TARGETS] = targets
    return ObservedContainer(docker_id, s.name, IMAGE, "running", labels=found, created=1.0)


def arranged(desired: list[DesiredContainer], observed: list[ObservedContainer]) -> list[tuple[ActionKind, str]]:
    actions = plan_convergence(desired, observed, {}, environment_id=ENV)
    return [(a.kind, a.slot_id) for a in arrange_unit_actions(actions, desired, observed)]


def test_a_new_unit_is_created_targets_first() -> None:
    desired = [want("helper", HELPER), want("data", DATA), want("web", WEB)]
    order = arranged(desired, [])
    assert order[-1] == (ActionKind.CREATE, "helper1")
    assert {slot for _, slot in order[:2]} == {"data1", "web1"}


def test_recreating_a_target_recreates_its_dependents_after_it() -> None:
    desired = [want("helper", HELPER), want("data", DATA), want("web", WEB)]
    observed = [
        seen(desired[0], "H", targets="data=D,web=W"),
        seen(desired[1], "D"),
        seen(desired[2], "W", stale=True),
    ]
    assert arranged(desired, observed) == [(ActionKind.RECREATE, "web1"), (ActionKind.RECREATE, "helper1")]


def test_a_dependent_created_against_an_old_target_is_recreated() -> None:
    desired = [want("helper", HELPER), want("data", DATA), want("web", WEB)]
    observed = [seen(desired[0], "H", targets="data=D-old,web=W"), seen(desired[1], "D"), seen(desired[2], "W")]
    actions = arrange_unit_actions(plan_convergence(desired, observed, {}, environment_id=ENV), desired, observed)
    assert [(a.kind, a.slot_id, a.reason) for a in actions] == [
        (ActionKind.RECREATE, "helper1", "sidekick data was recreated")
    ]
    assert actions[0].docker_id == "H"


def test_a_converged_unit_needs_nothing_and_other_indexes_are_independent() -> None:
    desired = [want("helper", HELPER), want("data", DATA), want("web", WEB), want("web", WEB, 2)]
    observed = [
        seen(desired[0], "H", targets="data=D,web=W"),
        seen(desired[1], "D"),
        seen(desired[2], "W"),
        seen(desired[3], "W2", stale=True),
    ]
    assert arranged(desired, observed) == [(ActionKind.RECREATE, "web2")]


def test_unit_options_in_docker_terms() -> None:
    launch = LaunchConfig(
        image=IMAGE, volumes_from=("data", "logs:ro", "container:legacy:ro", "container:x"), network_mode="service:web"
    )
    options = unit_options(launch, {"data": "D", "logs": "L", "web": "W"})
    assert options.volumes_from == ("D:rw", "L:ro", "legacy:ro", "x:rw")
    assert options.network_mode == "container:W"
    assert options.label == "data=D,logs=L,web=W"
    with pytest.raises(InvalidInput, match="no container of sidekick web"):
        unit_options(launch, {"data": "D", "logs": "L"})
    assert unit_options(WEB, {}).network_mode is None


def test_create_arguments_carry_the_references_and_their_targets() -> None:
    entry = want("helper", HELPER)
    arguments = create_arguments(entry, {"data": "D", "web": "W"})
    assert arguments.host_config["network_mode"] == "container:W"
    assert arguments.host_config["volumes_from"] == ["D:rw"]
    assert arguments.config["labels"][UNIT_TARGETS] == "data=D,web=W"
    assert recorded_targets(seen(entry, "H", targets="data=D,web=W")) == {"data": "D", "web": "W"}
    plain = create_arguments(want("web", WEB))
    assert UNIT_TARGETS not in plain.config["labels"] and plain.host_config["volumes_from"] is None


def test_find_target_matches_environment_stack_service_and_index() -> None:
    helper, web1, web2 = want("helper", HELPER), want("web", WEB), want("web", WEB, 2)
    observed = [seen(web2, "W2"), seen(web1, "W1")]
    found = find_target(observed, helper.slot, "web")
    assert found is not None and found.docker_id == "W1"
    assert find_target(observed, helper.slot, "data") is None
