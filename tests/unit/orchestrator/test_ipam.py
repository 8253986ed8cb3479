"""IPAM: host slices and container addresses (orchestrator/ipam.py), by example and by property."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.network import NetworkSettings
from corral.orchestrator.ipam import (
    AddressRequest,
    HostSlice,
    assign_addresses,
    assign_slices,
    is_assignable,
    requested_addresses,
)

NET = NetworkSettings(subnet="10.42.0.0/16", host_prefix=24)
SMALL = NetworkSettings(subnet="10.9.0.0/26", host_prefix=28)  # 4 slices of 16 (13 usable addresses each)


# -- slices ------------------------------------------------------------------------------------------------------


def test_new_hosts_get_the_lowest_free_slices_and_keep_theirs() -> None:
    result = assign_slices(NET, [HostSlice("a", "10.42.1.0/24"), HostSlice("b"), HostSlice("c")])
    assert result.slices == {"a": "10.42.1.0/24", "b": "10.42.0.0/24", "c": "10.42.2.0/24"}
    assert result.reasons == {}


def test_a_removed_hosts_slice_is_given_again() -> None:
    first = assign_slices(NET, [HostSlice("a"), HostSlice("b")]).slices
    again = assign_slices(NET, [HostSlice("b", first["b"]), HostSlice("c")]).slices
    assert again == {"b": "10.42.1.0/24", "c": "10.42.0.0/24"}


def test_too_many_hosts_leaves_the_last_without_a_slice_and_says_why() -> None:
    result = assign_slices(SMALL, [HostSlice(f"h{i}") for i in range(5)])
    assert [result.slices[f"h{i}"] for i in range(4)] == [f"10.9.0.{16 * i}/28" for i in range(4)]
    assert result.slices["h4"] == ""
    assert "no free /28 slice" in result.reasons["h4"] and "10.9.0.0/26" in result.reasons["h4"]


def test_invalid_or_shared_slices_are_replaced() -> None:
    hosts = [
        HostSlice("a", "10.42.0.0/24"),
        HostSlice("b", "10.42.0.0/24"),  # shared with a: a came first
        HostSlice("c", "192.168.0.0/24"),  # outside the subnet
        HostSlice("d", "10.42.7.0/25"),  # wrong size
        HostSlice("e", "garbage"),
    ]
    slices = assign_slices(NET, hosts).slices
    assert slices == {
        "a": "10.42.0.0/24",
        "b": "10.42.1.0/24",
        "c": "10.42.2.0/24",
        "d": "10.42.3.0/24",
        "e": "10.42.4.0/24",
    }


@settings(max_examples=200)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_slices_are_stable_distinct_and_inside_the_subnet(steps: list[bool]) -> None:
    """Random joins (True) and leaves (False, the oldest host goes): no slice shared, none outside, kept for life."""
    hosts: list[HostSlice] = []
    held: dict[str, str] = {}
    for number, join in enumerate(steps):
        if join:
            hosts.append(HostSlice(f"h{number}"))
        elif hosts:
            hosts.pop(0)
        result = assign_slices(SMALL, hosts)
        given_out = [s for s in result.slices.values() if s]
        assert len(given_out) == len(set(given_out))
        assert all(ipaddress.IPv4Network(s).subnet_of(SMALL.network) for s in given_out)
        assert len(given_out) == min(len(hosts), 4)
        for host_id, slice_ in result.slices.items():
            if held.get(host_id):
                assert slice_ == held[host_id]
        held = dict(result.slices)
        hosts = [HostSlice(h.host_id, result.slices[h.host_id]) for h in hosts]


# -- addresses ---------------------------------------------------------------------------------------------------

SLICES = {"a": "10.42.0.0/24", "b": "10.42.1.0/24"}


def _slot(slot_id: str, host: str = "a", **kwargs: object) -> AddressRequest:
    return AddressRequest(slot_id=slot_id, host_id=host, managed=bool(kwargs.pop("managed", True)), **kwargs)  # type: ignore[arg-type]


def test_slots_get_the_lowest_free_address_of_their_hosts_slice_after_the_gateway() -> None:
    result = assign_addresses(NET, SLICES, [_slot("1"), _slot("2"), _slot("3", "b"), _slot("4", managed=False)])
    assert result.addresses == {"1": "10.42.0.2", "2": "10.42.0.3", "3": "10.42.1.2", "4": ""}


def test_held_addresses_stay_and_freed_ones_are_given_again() -> None:
    first = assign_addresses(NET, SLICES, [_slot("1"), _slot("2"), _slot("3")]).addresses
    slots = [_slot("1", current=first["1"]), _slot("3", current=first["3"]), _slot("4")]
    assert assign_addresses(NET, SLICES, slots).addresses == {"1": "10.42.0.2", "3": "10.42.0.4", "4": "10.42.0.3"}


def test_requested_ip_is_honoured_when_free_first_free_of_the_list_wins() -> None:
    slots = [
        _slot("1", current="10.42.0.9"),
        _slot("2", "b", requested=("10.42.0.9", "10.42.5.5")),  # first taken by 1: the second (another slice) wins
        _slot("3", requested=("10.42.0.1",)),  # a gateway: refused, from the slice instead
        _slot("4", requested=("192.168.1.1",)),  # outside the subnet
    ]
    assert assign_addresses(NET, SLICES, slots).addresses == {
        "1": "10.42.0.9",
        "2": "10.42.5.5",
        "3": "10.42.0.2",
        "4": "10.42.0.3",
    }


def test_requested_addresses_come_from_either_label_as_a_comma_list() -> None:
    labels = {"io.rancher.container.requested_ip": "10.42.0.7, 10.42.0.8", "io.corral.container.requested_ip": "x"}
    assert requested_addresses(labels) == ("10.42.0.7", "10.42.0.8", "x")
    assert requested_addresses([("other", "1")]) == ()


def test_retained_address_is_kept_across_a_replace_even_on_another_host() -> None:
    result = assign_addresses(NET, SLICES, [_slot("new", "b", retained="10.42.0.17"), _slot("other")])
    assert result.addresses == {"new": "10.42.0.17", "other": "10.42.0.2"}


def test_a_retained_address_is_not_given_to_another_slots_request_or_the_pool() -> None:
    slots = [_slot("asks", requested=("10.42.0.2",)), _slot("keeps", retained="10.42.0.2"), _slot("pool")]
    assert assign_addresses(NET, SLICES, slots).addresses == {
        "asks": "10.42.0.3",
        "keeps": "10.42.0.2",
        "pool": "10.42.0.4",
    }


def test_reserved_addresses() -> None:
    assert not is_assignable(NET, "10.42.0.0") and not is_assignable(NET, "10.42.0.1")
    assert not is_assignable(NET, "10.42.3.255") and not is_assignable(NET, "10.42.255.255")
    assert not is_assignable(NET, "10.43.0.5") and not is_assignable(NET, "nonsense")
    assert is_assignable(NET, "10.42.3.2") and is_assignable(NET, "10.42.3.254")


def test_a_full_slice_or_no_slice_leaves_the_slot_without_an_address_and_says_why() -> None:
    slots = [_slot(str(i)) for i in range(14)] + [_slot("nowhere", "c")]
    result = assign_addresses(SMALL, {"a": "10.9.0.0/28"}, slots)
    assert [result.addresses[str(i)] for i in range(13)] == [f"10.9.0.{i}" for i in range(2, 15)]
    assert result.addresses["13"] == "" and "no free address" in result.reasons["13"]
    assert result.addresses["nowhere"] == "" and "no slice" in result.reasons["nowhere"]


def test_a_duplicate_holding_is_resolved_in_favour_of_the_older_slot() -> None:
    result = assign_addresses(NET, SLICES, [_slot("old", current="10.42.0.5"), _slot("new", current="10.42.0.5")])
    assert result.addresses == {"old": "10.42.0.5", "new": "10.42.0.2"}


# -- property: a random life of an environment --------------------------------------------------------------------


@dataclass
class _Live:
    request: AddressRequest
    service: int
    index: int
    retain: bool


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "replace", "move"]),
        st.integers(0, 3),  # service
        st.integers(1, 4),  # index
        st.sampled_from(["a", "b"]),  # host
        st.one_of(st.none(), st.sampled_from(["10.9.0.2", "10.9.0.3", "10.9.0.18", "10.9.0.1", "10.9.0.99"])),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300)
@given(_OPS)
def test_no_address_is_ever_held_twice_and_retain_ip_keeps_it(ops: list[tuple[str, int, int, str, str | None]]) -> None:
    """Services 0 and 1 retain their addresses; 3 is not on the managed network."""
    slices = {"a": "10.9.0.0/28", "b": "10.9.0.16/28"}
    live: list[_Live] = []
    for counter, (op, service, index, host, requested) in enumerate(ops):
        same = [x for x in live if x.service == service and x.index == index]
        expect_retained: tuple[str, str] | None = None
        if op == "add":
            request = AddressRequest(f"s{counter}", host, service != 3, requested=(requested,) if requested else ())
            live.append(_Live(request, service, index, service in (0, 1)))
        elif op == "remove" and same:
            live.remove(same[0])
        elif op in ("replace", "move") and same:
            old = same[0]
            live.remove(old)
            new_host = host if op == "move" else old.request.host_id
            retained = old.request.current if old.retain else ""
            request = AddressRequest(
                f"s{counter}", new_host, old.request.managed, requested=old.request.requested, retained=retained
            )
            live.append(_Live(request, service, index, old.retain))
            if retained and not old.request.requested:
                expect_retained = (request.slot_id, retained)
        result = assign_addresses(SMALL, slices, [x.request for x in live])
        held = [a for a in result.addresses.values() if a]
        assert len(held) == len(set(held))
        assert all(is_assignable(SMALL, a) for a in held)
        assert all(result.addresses[x.request.slot_id] == "" for x in live if not x.request.managed)
        if expect_retained is not None:
            assert result.addresses[expect_retained[0]] == expect_retained[1]
        for x in live:  # held addresses never change
            if x.request.current:
                assert result.addresses[x.request.slot_id] == x.request.current
            wanted = [r for r in x.request.requested if is_assignable(SMALL, r)]
            others = {y.request.current for y in live} | {
                a
                for y in live
                if y is not x and not y.request.current
                for a in (*y.request.requested, y.request.retained)
            }
            if not x.request.current and x.request.managed and wanted and wanted[0] not in others:
                assert result.addresses[x.request.slot_id] == wanted[0]  # requested honoured when free
        holders = set(held)
        for x in live:  # an address from the pool is the lowest one free: every usable one below it is held
            address = result.addresses[x.request.slot_id]
            if address and not x.request.current and address not in (*x.request.requested, x.request.retained):
                below = list(ipaddress.IPv4Network(slices[x.request.host_id]).hosts())[1:]
                assert all(str(ip) in holders for ip in below if int(ip) < int(ipaddress.IPv4Address(address)))
        live = [replace(x, request=replace(x.request, current=result.addresses[x.request.slot_id])) for x in live]
