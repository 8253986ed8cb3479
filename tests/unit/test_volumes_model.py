"""Volumes as agents report them and as the API shows them (model/volumes.py, pure): the wire form is bounds-checked,
an environment's volume groups every host's copy, its state follows the hosts that hold it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model import protocol
from corral.model.errors import InvalidInput
from corral.model.volumes import (
    SCOPE_LABEL,
    STACK_LABEL,
    HostVolumes,
    ObservedVolume,
    VolumeHolding,
    environment_volumes,
    validate_volume_name,
    volume_state,
    volume_to_wire,
    volumes_from_wire,
)

DATA = ObservedVolume("app_data", labels={SCOPE_LABEL: "stack", STACK_LABEL: "app"}, containers=("app-db-1",))
IDLE = ObservedVolume("app_data", labels={SCOPE_LABEL: "stack", STACK_LABEL: "app"})
HAND = ObservedVolume("backups", driver="local")


def test_the_report_round_trips_and_is_sorted_by_name() -> None:
    wire = [volume_to_wire(v) for v in (HAND, DATA)]
    assert volumes_from_wire(wire) == (DATA, HAND)
    message = protocol.Message(protocol.VOLUMES, {"volumes": wire})
    assert volumes_from_wire(protocol.decode(message.encode()).data["volumes"]) == (DATA, HAND)
    assert protocol.VOLUMES in protocol.AGENT_MESSAGE_TYPES and protocol.VOLUME in protocol.SERVER_MESSAGE_TYPES


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"volumes": []}, "volumes"),
        ([{"driver": "local"}], "volumes[0].name"),
        (["x"], "volumes[0]"),
        ([{"name": "a", "containers": "web"}], "volumes[0].containers"),
        ([{"name": "a", "driver": 3}], "volumes[0].driver"),
        ([{"name": "x" * 300}], "volumes[0].name"),
    ],
)
def test_a_bad_report_names_the_field(data: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        volumes_from_wire(data)
    assert caught.value.field == field


def test_old_agents_leave_out_optional_fields() -> None:
    assert volumes_from_wire([{"name": "legacy"}]) == (ObservedVolume("legacy"),)


def test_scope_comes_from_corrals_label_else_environment() -> None:
    assert DATA.scope == "stack"
    assert HAND.scope == "environment"
    assert ObservedVolume("c_1", labels={SCOPE_LABEL: "container"}).scope == "container"
    assert ObservedVolume("odd", labels={SCOPE_LABEL: "bogus"}).scope == "environment"


def test_an_environment_volume_groups_every_hosts_copy() -> None:
    hosts = [
        HostVolumes("h2", "two", True, (IDLE,)),
        HostVolumes("h1", "one", True, (DATA, HAND)),
        HostVolumes("h3", "three", False, (HAND,)),
    ]
    data, backups = environment_volumes(hosts)
    assert (data.name, data.state, data.scope, data.stack) == ("app_data", "active", "stack", "app")
    assert [h.host_name for h in data.holdings] == ["one", "two"]
    assert data.containers == ("app-db-1",)
    assert (backups.state, [h.host_name for h in backups.holdings]) == ("inactive", ["one", "three"])
    assert backups.view()["hosts"][1] == {"id": "h3", "name": "three", "containers": [], "usable": False}
    (removing,) = [v for v in environment_volumes(hosts, removing=["backups"]) if v.name == "backups"]
    assert removing.state == "removing"


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=5), st.booleans())
def test_state_rule(holdings: list[tuple[bool, bool]], removing: bool) -> None:
    held = [
        VolumeHolding(f"h{i}", f"h{i}", ("c",) if used else (), usable) for i, (used, usable) in enumerate(holdings)
    ]
    state = volume_state(held, removing)
    if removing:
        assert state == "removing"
    elif any(used and usable for used, usable in holdings):
        assert state == "active"
    elif any(usable for _, usable in holdings):
        assert state == "inactive"
    else:
        assert state == "detached"


def test_volume_names_are_checked() -> None:
    assert validate_volume_name("app_data.1") == "app_data.1"
    for bad in ("", "a", "-x", "a/b", "x" * 256, 3):
        with pytest.raises(InvalidInput):
            validate_volume_name(bad)
