"""IPAM for the managed overlay: host slices of an environment's subnet, and container addresses inside them.

Why pure: the server's network pass (server/control/network_pass.py) hands in what the store holds and writes back what
comes out; the rules below are checked by property tests without a database. Both functions are level-triggered:
they take every host (or every slot) of one environment with what it holds now and return what each should hold,
so a restarted server, a lost write or a removed host converges on the next pass.

Rules:
- a host keeps its slice for life; a host without one gets the lowest free slice; when the subnet has no free slice
  left the host gets none and a reason; a removed host is simply absent, so its slice is free again;
- a slot on the managed network keeps the address it has; one without gets, in order: its requested address
  (`io.rancher.container.requested_ip` / `io.corral.container.requested_ip`, a comma list, the first free one
  wins), the address of the slot it replaced (`retain_ip`), the lowest free address of its host's slice;
- never handed out: the subnet's network and broadcast addresses, and in every slice (assigned or not) its network
  address, its first usable address (the host's gateway on corral0) and its broadcast address;
- no address is held by two slots; a slot that is gone (or left the managed network) frees its address.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.network import NetworkSettings

REQUESTED_IP_LABELS = ("io.rancher.container.requested_ip", "io.corral.container.requested_ip")
MANAGED = "managed"


# -- host slices -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostSlice:
    """A host and the slice it holds now ("" for none). Pass hosts oldest first: earlier hosts win ties."""

    host_id: str
    slice: str = ""


@dataclass(frozen=True)
class SliceAssignment:
    slices: dict[str, str]  # host id -> its slice ("" when none could be given)
    reasons: dict[str, str] = field(default_factory=dict)  # host id -> why it has no slice


def assign_slices(settings: NetworkSettings, hosts: Sequence[HostSlice]) -> SliceAssignment:
    """Every host's slice: kept when it is a valid, unshared slice of the subnet, else the lowest free one."""
    subnet = settings.network
    taken: set[ipaddress.IPv4Network] = set()
    slices: dict[str, str] = {}
    waiting: list[str] = []
    for host in hosts:
        current = _valid_slice(host.slice, subnet, settings.host_prefix)
        if current is not None and current not in taken:
            taken.add(current)
            slices[host.host_id] = str(current)
        else:
            waiting.append(host.host_id)
    reasons: dict[str, str] = {}
    if waiting:
        free = (s for s in subnet.subnets(new_prefix=settings.host_prefix) if s not in taken)
        for host_id in waiting:
            candidate = next(free, None)
            if candidate is None:
                slices[host_id] = ""
                reasons[host_id] = (
                    f"the subnet {subnet} has no free /{settings.host_prefix} slice left "
                    f"({len(taken)} hosts hold one); use a larger network.subnet or network.host_prefix"
                )
            else:
                taken.add(candidate)
                slices[host_id] = str(candidate)
    return SliceAssignment(slices, reasons)


def _valid_slice(text: str, subnet: ipaddress.IPv4Network, prefix: int) -> ipaddress.IPv4Network | None:
    network = _parsed_slice(text)
    if network is None or network.prefixlen != prefix or not network.subnet_of(subnet):
        return None
    return network


@functools.lru_cache(maxsize=1 << 16)
def _parsed_slice(text: str) -> ipaddress.IPv4Network | None:
    """Parsed once per text: every pass checks every host's slice (3 % of a loaded server's time at 1,000 hosts)."""
    if not text:
        return None
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return None


# -- container addresses -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressRequest:
    """One live slot of the environment (retired upgrade slots included: they keep their address).

    Pass slots oldest first: when two slots claim one address (which the rules never cause), the earlier keeps it.
    """

    slot_id: str
    host_id: str
    managed: bool  # its launch network_mode is "managed"
    current: str = ""  # the address it holds now
    requested: tuple[str, ...] = ()  # requested_ip candidates, in order
    retained: str = ""  # the address of the slot it replaced, when its service has retain_ip


@dataclass(frozen=True)
class AddressAssignment:
    addresses: dict[str, str]  # slot id -> its address ("" when not managed or none could be given)
    reasons: dict[str, str] = field(default_factory=dict)  # slot id -> why a managed slot has no address


def requested_addresses(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The requested_ip candidates of a launch config's labels (a comma list; io.rancher.* first)."""
    values = dict(labels.items() if isinstance(labels, Mapping) else labels)
    found: list[str] = []
    for key in REQUESTED_IP_LABELS:
        for part in values.get(key, "").split(","):
            if part.strip() and part.strip() not in found:
                found.append(part.strip())
    return tuple(found)


def is_assignable(settings: NetworkSettings, address: str) -> bool:
    """Inside the subnet and none of: its network/broadcast address, any slice's network, gateway or broadcast."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    subnet = settings.network
    if ip not in subnet:
        return False
    size = 2 ** (32 - settings.host_prefix)
    offset = int(ip) % size  # slices are aligned inside the (aligned) subnet
    return offset not in (0, 1, size - 1)


def assign_addresses(
    settings: NetworkSettings, slices: Mapping[str, str], slots: Sequence[AddressRequest]
) -> AddressAssignment:
    """Every slot's address. `slices` maps host id -> its slice (as `assign_slices` gave)."""
    addresses: dict[str, str] = {}
    reasons: dict[str, str] = {}
    taken: set[str] = set()
    pending: list[AddressRequest] = []
    for slot in slots:  # 1. what slots hold stays theirs (when valid and not already taken)
        if not slot.managed:
            addresses[slot.slot_id] = ""
        elif slot.current and slot.current not in taken and is_assignable(settings, slot.current):
            taken.add(slot.current)
            addresses[slot.slot_id] = slot.current
        else:
            pending.append(slot)
    # 2. requested, then retained; another pending slot's retained address is promised to it
    promised = {s.retained for s in pending if s.retained}
    needs_pool: list[AddressRequest] = []
    for slot in sorted(pending, key=lambda s: not s.retained):  # slots with a retained address first
        choice = next(
            (
                a
                for a in slot.requested
                if a not in taken and (a not in promised or a == slot.retained) and is_assignable(settings, a)
            ),
            None,
        )
        if choice is None and slot.retained and slot.retained not in taken and is_assignable(settings, slot.retained):
            choice = slot.retained
        promised.discard(slot.retained)
        if choice is None:
            needs_pool.append(slot)
            continue
        taken.add(choice)
        promised.discard(choice)
        addresses[slot.slot_id] = choice
    # 3. the lowest free usable address of the slot's host's slice (one walk up each slice for all its slots: the
    # addresses below the last one given are taken, and taken or promised ones only grow)
    order = {s.slot_id: position for position, s in enumerate(slots)}
    walks: dict[str, Iterator[str]] = {}
    for slot in sorted(needs_pool, key=lambda s: order[s.slot_id]):
        slice_text = slices.get(slot.host_id, "")
        if not slice_text:
            addresses[slot.slot_id] = ""
            reasons[slot.slot_id] = "its host has no slice of the overlay subnet yet"
            continue
        walk = walks.get(slice_text)
        if walk is None:
            walk = walks[slice_text] = _free_in_slice(slice_text, taken, promised)
        address = next(walk, "")
        addresses[slot.slot_id] = address
        if address:
            taken.add(address)
        else:
            reasons[slot.slot_id] = f"its host's slice {slice_text} has no free address left"
    return AddressAssignment(addresses, reasons)


def _free_in_slice(slice_text: str, taken: set[str], promised: set[str]) -> Iterator[str]:
    """The slice's usable addresses (not its gateway) in ascending order, each free when it is reached."""
    hosts = ipaddress.IPv4Network(slice_text).hosts()
    next(hosts, None)  # the gateway
    for ip in hosts:
        text = str(ip)
        if text not in taken and text not in promised:
            yield text
