"""The overlay's shared model: settings validation naming the field, and the `network` message round trip."""

from __future__ import annotations

import pytest

from corral.model.errors import InvalidInput
from corral.model.network import (
    ContainerRecord,
    HostNetwork,
    NetworkSettings,
    NetworkState,
    ServiceRecord,
)


def test_defaults_are_rancher_like() -> None:
    settings = NetworkSettings()
    assert (settings.subnet, settings.host_prefix, settings.mtu) == ("10.42.0.0/16", 24, 1450)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"subnet": "10.42.0.1/16"}, "network.subnet"),  # host bits set
        ({"subnet": "nonsense"}, "network.subnet"),
        ({"subnet": "198.18.64.0/18", "host_prefix": 18}, "network.host_prefix"),
        ({"host_prefix": 30}, "network.host_prefix"),
        ({"mtu": 100}, "network.mtu"),
        ({"vni": 0}, "network.vni"),
        ({"mtu": "1450"}, "network.mtu"),
        ({"mtu": True}, "network.mtu"),
        ({"colour": "blue"}, "network.colour"),
    ],
)
def test_bad_settings_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        NetworkSettings.from_dict(data)
    assert caught.value.field == field


def test_gateway_is_the_first_address_of_the_slice() -> None:
    assert HostNetwork("h1", "a", "198.18.0.11", "198.18.65.0/24").gateway == "198.18.65.1"
    assert HostNetwork("h1", "a", "198.18.0.11", "").gateway == ""


def test_network_state_round_trips() -> None:
    state = NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(subnet="198.18.64.0/18"),
        host=HostNetwork("h1", "a", "198.18.0.11", "198.18.65.0/24"),
        peers=(HostNetwork("h2", "b", "198.18.0.12", "198.18.66.0/24"),),
        containers=(
            ContainerRecord("s1", "shop-web-1", "shop", "web", 1, "h1", "198.18.65.2", True, True, links=("db:data",)),
        ),
        services=(ServiceRecord("shop", "web", 1, metadata={"k": ["v"]}, sidekicks=("log",)),),
        hosts=({"host_id": "h1", "name": "a"},),
    )
    assert NetworkState.from_dict(state.to_dict()) == state


def test_a_malformed_message_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        NetworkState.from_dict({"environment_id": "e1"})
