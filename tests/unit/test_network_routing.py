"""The routed encrypted overlay's pure parts (network/routing.py): which routes a device needs, which container
addresses need a host route, and the forwarding rules written as `iptables -S` prints them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.network.routing import WantedRoutes, foreign_addresses, route_differences, rules

slices = st.frozensets(st.sampled_from([f"10.42.{n}.0/24" for n in range(1, 8)] + ["10.42.200.9/32"]))


@given(wanted=slices, present=slices)
def test_route_differences_reach_the_wanted_set_and_then_nothing(
    wanted: frozenset[str], present: frozenset[str]
) -> None:
    add, delete = route_differences(wanted, present)
    assert (set(present) - set(delete)) | set(add) == wanted
    assert route_differences(wanted, wanted) == ([], [])
    assert add == sorted(add) and delete == sorted(delete)


def test_only_addresses_outside_the_slice_get_host_routes() -> None:
    found = foreign_addresses("10.42.3.0/24", ["10.42.3.7", "10.42.9.4", "", "10.42.3.255", "10.42.4.1"])
    assert found == {"10.42.9.4/32", "10.42.4.1/32"}
    assert foreign_addresses("", ["10.42.1.2"]) == {"10.42.1.2/32"}


def test_rules_accept_forwarding_skip_masquerading_and_clamp_mss_on_the_tunnel_only() -> None:
    found = rules(WantedRoutes("cwg0a1b", "10.42.0.0/16", frozenset()))
    printed = [f"-t {table} -A {chain} {' '.join(rule)}" for table, chain, rule in found]
    assert printed == [
        "-t filter -A FORWARD -s 10.42.0.0/16 -d 10.42.0.0/16 -i cwg0a1b -o corral0 -j ACCEPT",
        "-t filter -A FORWARD -s 10.42.0.0/16 -d 10.42.0.0/16 -i corral0 -o cwg0a1b -j ACCEPT",
        "-t nat -A POSTROUTING -s 10.42.0.0/16 -d 10.42.0.0/16 -o cwg0a1b -j RETURN",
        "-t mangle -A FORWARD -o cwg0a1b -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    ]
