"""The encrypted overlay's pure parts: `wg syncconf` text, the comparison with `wg show dump`, the UDP filter's
rules, and the hello's `wireguard` field."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.protocol import wireguard_from_wire
from corral.network.firewall import CHAIN, WantedFilter, chain_rules, restore_input
from corral.network.wireguard import TunnelPeer, WantedTunnel, tunnel_config, tunnel_differences, usable_peers

PRIVATE = base64.b64encode(b"p" * 32).decode()
PUBLIC = base64.b64encode(b"q" * 32).decode()


def _key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


def _peer(n: int) -> TunnelPeer:
    return TunnelPeer(_key(n), f"198.18.0.{10 + n}", 51820, f"169.254.64.{n}", (f"10.42.{n}.0/24", f"10.42.99.{n}/32"))


def _dump(want: WantedTunnel, peers: list[TunnelPeer]) -> str:
    """What `wg show NAME dump` prints for an interface configured with `peers`."""
    lines = [f"{want.private_key}\t{PUBLIC}\t{want.port}\toff"]
    for p in peers:
        allowed = ",".join(reversed(p.allowed_ips))  # wg prints them in its own order
        lines.append(f"{p.public_key}\t(none)\t{p.endpoint}:{p.port}\t{allowed}\t0\t0\t0\toff")
    return "\n".join(lines) + "\n"


peers_strategy = st.lists(st.integers(min_value=1, max_value=40), unique=True, max_size=8).map(
    lambda ns: [_peer(n) for n in ns]
)


@given(wanted=peers_strategy, present=peers_strategy)
def test_the_dump_of_the_wanted_config_shows_no_difference_and_any_other_does(
    wanted: list[TunnelPeer], present: list[TunnelPeer]
) -> None:
    want = WantedTunnel("cwg0123", PRIVATE, 51820, "169.254.64.99", 1420, tuple(wanted))
    assert tunnel_differences(want, _dump(want, wanted)) == []
    differs = tunnel_differences(want, _dump(want, present))
    assert (differs == []) == ({p.public_key for p in present} == {p.public_key for p in wanted})


def test_differences_name_the_key_port_and_peers_and_never_the_private_key() -> None:
    want = WantedTunnel("cwg0123", PRIVATE, 51820, "169.254.64.1", 1420, (_peer(2),))
    moved = TunnelPeer(_key(2), "198.18.0.99", 51820, "169.254.64.2")
    other = WantedTunnel("cwg0123", _key(7), 51821, "169.254.64.1", 1420)
    found = tunnel_differences(want, _dump(other, [moved, _peer(3)]))
    text = "; ".join(found)
    assert "another private key" in text and "listen port 51821" in text
    assert "no longer wanted" in text and "endpoint 198.18.0.99:51820" in text
    assert PRIVATE not in text and PRIVATE not in repr(want)
    assert tunnel_differences(want, "") == ["the interface has no configuration"]


def test_config_holds_one_section_per_usable_peer() -> None:
    incomplete = TunnelPeer(_key(5), "198.18.0.15", 51820, "")  # no transit address yet: left out
    want = WantedTunnel("cwg0123", PRIVATE, 51820, "169.254.64.1", 1420, (_peer(2), incomplete, _peer(3)))
    text = tunnel_config(want)
    assert text.startswith(f"[Interface]\nPrivateKey = {PRIVATE}\nListenPort = 51820\n")
    assert text.count("[Peer]") == 2
    allowed = "169.254.64.2/32, 10.42.2.0/24, 10.42.99.2/32"
    assert f"PublicKey = {_key(2)}\nEndpoint = 198.18.0.12:51820\nAllowedIPs = {allowed}" in text
    assert usable_peers(want.peers) == (_peer(2), _peer(3))
    assert want.address == "169.254.64.1/18"


def test_encrypted_filter_accepts_vxlan_only_from_peers_inside_the_tunnel() -> None:
    want = WantedFilter(
        vxlan_sources=frozenset({"169.254.64.2"}),
        vxlan_interface="cwg0123",
        wireguard_port=51820,
        wireguard_sources=frozenset({"198.18.0.12"}),
    )
    assert chain_rules(want) == [
        f"-N {CHAIN}",
        f"-A {CHAIN} -s 198.18.0.12/32 -p udp -m udp --dport 51820 -j RETURN",
        f"-A {CHAIN} -p udp -m udp --dport 51820 -j DROP",
        f"-A {CHAIN} -s 169.254.64.2/32 -i cwg0123 -p udp -m udp --dport 4789 -j RETURN",
        f"-A {CHAIN} -p udp -m udp --dport 4789 -j DROP",
    ]


@given(st.sets(st.ip_addresses(v=4).map(str), max_size=10))
def test_plain_filter_accepts_each_peer_once_and_drops_the_rest_last(peers: set[str]) -> None:
    rules = chain_rules(WantedFilter(vxlan_sources=frozenset(peers)))
    assert rules[-1] == f"-A {CHAIN} -p udp -m udp --dport 4789 -j DROP"
    assert sorted(r.split()[3] for r in rules[1:-1]) == sorted(f"{p}/32" for p in peers)
    restored = restore_input(rules)
    assert restored.startswith(f"*filter\n:{CHAIN} - [0:0]\n") and restored.endswith("COMMIT\n")
    assert "-N " not in restored


def test_hello_wireguard_field_is_checked() -> None:
    assert wireguard_from_wire({"public_key": PUBLIC, "port": 51820}) == (PUBLIC, 51820)
    for bad, field in [
        ({"public_key": "nope", "port": 51820}, "wireguard.public_key"),
        ({"public_key": base64.b64encode(b"x" * 31).decode(), "port": 51820}, "wireguard.public_key"),
        ({"public_key": PUBLIC, "port": 0}, "wireguard.port"),
        ({"public_key": PUBLIC, "port": True}, "wireguard.port"),
        ("key", "wireguard"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            wireguard_from_wire(bad)
        assert caught.value.field == field


def test_a_peer_whose_routed_addresses_changed_is_reconfigured() -> None:
    want = WantedTunnel("cwg0123", PRIVATE, 51820, "169.254.64.1", 1420, (_peer(2),))
    grown = TunnelPeer(_key(2), "198.18.0.12", 51820, "169.254.64.2", (*_peer(2).routed, "10.42.7.9/32"))
    assert tunnel_differences(dataclasses.replace(want, peers=(grown,)), _dump(want, [_peer(2)])) == [
        f"peer {_key(2)[:8]}… has endpoint 198.18.0.12:51820, allowed 10.42.2.0/24,10.42.99.2/32,169.254.64.2/32"
    ]
