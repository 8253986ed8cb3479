"""The overlay's shared model: settings validation naming the field, and the `network` message round trip."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.network import (
    TRANSIT_NETWORK,
    ContainerRecord,
    HostNetwork,
    NetworkSettings,
    NetworkState,
    ServiceRecord,
    random_vni,
    transit_address,
    wireguard_interface,
)
from corral.orchestrator.ipam import HostSlice, assign_slices


def test_defaults_fit_the_scale_targets_and_are_encrypted() -> None:
    settings = NetworkSettings()
    assert (settings.subnet, settings.host_prefix, settings.mtu, settings.encryption) == (
        "10.32.0.0/11",
        24,
        1420,
        True,
    )
    # C1M's 5,000 hosts each get a /24 of their own (a /16 default stopped at 256 hosts), each with a transit address
    hosts = [HostSlice(f"h{index}") for index in range(5000)]
    slices = assign_slices(settings, hosts)
    assert not slices.reasons and len(set(slices.slices.values())) == 5000
    assert len({transit_address(settings, piece) for piece in slices.slices.values()} - {""}) == 5000
    plain = NetworkSettings.from_dict({"encryption": False})
    assert (plain.mtu, plain.encryption) == (1450, False)  # plain VXLAN keeps Rancher's 1450
    assert NetworkSettings.from_dict(NetworkSettings(mtu=1400).to_dict()).mtu == 1400


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
        ({"encryption": "off"}, "network.encryption"),
        ({"encryption": 0}, "network.encryption"),
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


def test_transit_addresses_follow_the_slice_number() -> None:
    settings = NetworkSettings(subnet="198.18.64.0/18")
    assert transit_address(settings, "198.18.64.0/24") == "169.254.64.1"
    assert transit_address(settings, "198.18.66.0/24") == "169.254.64.3"
    assert transit_address(settings, "") == ""
    many = NetworkSettings(subnet="10.0.0.0/8", host_prefix=29)  # 2**21 slices: the far ones have none
    assert transit_address(many, "10.255.255.248/29") == ""


@given(
    prefix=st.integers(min_value=8, max_value=24),
    extra=st.integers(min_value=1, max_value=8),
    picks=st.lists(st.integers(min_value=0, max_value=2**16), min_size=2, max_size=20, unique=True),
)
def test_distinct_slices_get_distinct_transit_addresses_inside_the_transit_network(
    prefix: int, extra: int, picks: list[int]
) -> None:
    settings = NetworkSettings(subnet=f"10.0.0.0/{prefix}", host_prefix=min(prefix + extra, 29))
    network = ipaddress.IPv4Network(settings.subnet)
    slices = list(itertools.islice(network.subnets(new_prefix=settings.host_prefix), 0, 2**16 + 1))
    chosen = {str(slices[p % len(slices)]) for p in picks}
    transits = [transit_address(settings, s) for s in chosen]
    assigned = [t for t in transits if t]
    assert len(set(assigned)) == len(assigned)
    transit_network = ipaddress.IPv4Network(TRANSIT_NETWORK)
    for address in assigned:
        ip = ipaddress.IPv4Address(address)
        assert ip in transit_network and ip not in (transit_network.network_address, transit_network.broadcast_address)
    assert ipaddress.IPv4Address("169.254.169.254") not in transit_network


@given(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=30))
def test_wireguard_interface_names_are_valid_and_unique_per_host_id(tail: str) -> None:
    name = wireguard_interface(f"h-{tail}")
    assert name.startswith("cwg") and len(name) <= 15 and name.isalnum()


def test_wireguard_interface_names_differ_for_real_host_ids() -> None:
    ids = {f"h-{i:012x}" for i in range(0, 2**40, 2**33)}
    assert len({wireguard_interface(h) for h in ids}) == len(ids)
    assert wireguard_interface("h-0123456789ab") == "cwg0123456789ab"


def test_random_vni_avoids_taken_ones() -> None:
    taken = set(range(1, 1000))
    for _ in range(50):
        vni = random_vni(taken)
        assert 1 <= vni < 2**24 and vni not in taken and vni != 4242


def test_peers_carry_their_wireguard_key_port_and_transit() -> None:
    peer = HostNetwork(
        "h2", "b", "198.18.0.12", "198.18.66.0/24", public_key="k" * 43 + "=", port=51820, transit="169.254.64.3"
    )
    assert HostNetwork.from_dict(peer.to_dict()) == peer
