"""Random host ports (orchestrator/host_ports.py): never shared on a host, clear of fixed ports, stable for life."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.orchestrator.host_ports import Allocation, PortNeed, PortRange, allocate_host_ports

SMALL = PortRange(50000, 50019)

_wanted = st.lists(st.tuples(st.integers(1, 5), st.sampled_from(["tcp", "udp"])), max_size=3, unique=True)
_needs = st.lists(
    st.builds(
        PortNeed,
        slot_id=st.text(alphabet="abcdef", min_size=1, max_size=4),
        host_id=st.sampled_from(["h1", "h2"]),
        wanted=_wanted.map(tuple),
    ),
    max_size=6,
    unique_by=lambda n: n.slot_id,
)
_fixed = st.dictionaries(
    st.sampled_from(["h1", "h2"]),
    st.sets(st.tuples(st.integers(49995, 50025), st.sampled_from(["tcp", "udp"])), max_size=6),
)


def _check_no_sharing(needs: list[PortNeed], fixed: dict[str, set[tuple[int, str]]], result: Allocation) -> None:
    seen: dict[tuple[str, int, str], str] = {}
    for need in needs:
        for container_port, protocol, host_port in result.ports[need.slot_id]:
            assert host_port in SMALL
            assert (host_port, protocol) not in fixed.get(need.host_id, set())
            key = (need.host_id, host_port, protocol)
            assert key not in seen, f"{need.slot_id} and {seen[key]} share {key}"
            seen[key] = need.slot_id
            assert (container_port, protocol) in need.wanted


@given(_needs, _fixed)
def test_ports_are_never_shared_on_a_host_and_avoid_fixed_ports(needs: list[PortNeed], fixed: dict) -> None:
    result = allocate_host_ports(needs, fixed, SMALL)
    _check_no_sharing(needs, fixed, result)
    for need in needs:  # 20 ports, at most 18 wanted, at most 6 fixed per protocol in range: exhaustion is possible
        if need.slot_id not in result.exhausted:
            assert [(c, p) for c, p, _ in result.ports[need.slot_id]] == list(need.wanted)


@given(_needs, _fixed)
def test_ports_are_stable_for_the_slots_life(needs: list[PortNeed], fixed: dict) -> None:
    first = allocate_host_ports(needs, fixed, SMALL)
    again = [PortNeed(n.slot_id, n.host_id, n.wanted, first.ports[n.slot_id]) for n in needs]
    assert allocate_host_ports(again, fixed, SMALL).ports == first.ports


@given(_needs, _fixed, _wanted)
def test_a_newcomer_never_takes_a_port_away(needs: list[PortNeed], fixed: dict, wanted: list) -> None:
    first = allocate_host_ports(needs, fixed, SMALL)
    current = [PortNeed(n.slot_id, n.host_id, n.wanted, first.ports[n.slot_id]) for n in needs]
    newcomer = PortNeed("zzzzz", "h1", tuple(wanted))
    second = allocate_host_ports([newcomer, *current], fixed, SMALL)
    for need in needs:
        assert second.ports[need.slot_id] == first.ports[need.slot_id]
    _check_no_sharing([*current, newcomer], fixed, second)


def test_a_fixed_port_that_arrives_later_moves_the_random_one() -> None:
    need = PortNeed("s1", "h1", ((80, "tcp"),))
    (given_port,) = allocate_host_ports([need], {}, SMALL).ports["s1"]
    moved = allocate_host_ports(
        [PortNeed("s1", "h1", need.wanted, (given_port,))], {"h1": {(given_port[2], "tcp")}}, SMALL
    )
    assert moved.ports["s1"][0][2] != given_port[2]


def test_ports_no_longer_wanted_are_dropped_and_protocols_are_separate() -> None:
    need = PortNeed("s1", "h1", ((53, "udp"),), current=((80, "tcp", 50001), (53, "udp", 50002)))
    assert allocate_host_ports([need], {"h1": {(50002, "tcp")}}, SMALL).ports == {"s1": ((53, "udp", 50002),)}


def test_an_exhausted_range_is_reported() -> None:
    tiny = PortRange(50000, 50001)
    needs = [PortNeed(f"s{i}", "h1", ((80, "tcp"),)) for i in range(3)]
    result = allocate_host_ports(needs, {}, tiny)
    assert len(result.exhausted) == 1
    assert "no free host port in 50000-50001 for 80/tcp" in next(iter(result.exhausted.values()))
    # a different host has its own ports
    other = allocate_host_ports([PortNeed("s9", "h2", ((80, "tcp"),)), *needs[:2]], {}, tiny)
    assert not other.exhausted


@pytest.mark.parametrize("text", ["0-10", "100-50", "abc", "1-70000", ""])
def test_a_bad_range_names_the_setting(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        PortRange.parse(text)
    assert caught.value.field == "CORRAL_HOST_PORT_RANGE"


def test_range_parsing() -> None:
    assert PortRange.parse(" 49153-65535 ") == PortRange(49153, 65535)
    assert PortRange.parse("8000") == PortRange(8000, 8000)
