"""The VXLAN half of the managed overlay on one host: `corralvx` on `corral0`, flooding entries
for the peers, and the services address on the bridge.

In an encrypted environment (`vxlan=False`) there is no VXLAN device (an old one is deleted): the peers' slices are
routed over WireGuard instead (network/routing.py), and only the bridge's parts below remain.

Why split in two: `plan_overlay` is pure (what is wanted + what the kernel has -> a list of steps, each with a
reason), so its rules are property-tested without a network namespace; `Overlay.apply` reads the links, forwarding
entries and addresses through netlink (pyroute2, only here), plans, and runs the steps. Applying is idempotent and
level-triggered: calling it again with the same wish changes nothing, and a deleted fdb entry, a detached or downed
device, or a lost address is put back by the next call.

What is wanted, given this host's underlay address and the peers' (model/network.py NetworkState):
- a VXLAN device `corralvx` (id = settings.vni, local = this host's address, UDP port 4789, no learning, mtu =
  settings.mtu), enslaved to the bridge `corral0` and up; a device with another id, local address, port or with
  learning on is deleted and created again;
- exactly one fdb entry `00:00:00:00:00:00 dst PEER` per peer (missing ones appended, stale ones deleted): broadcast
  and unknown unicast are flooded to every peer, so ARP works across hosts;
- `169.254.169.250/32` on `corral0`, so containers reach this host's DNS and metadata through their gateway.
The bridge itself is Docker's (runtime/networks.py creates the `corral-managed` network); while it is missing the
plan says so and does nothing else.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute

from corral.model.errors import CorralError, InvalidInput
from corral.model.network import BRIDGE_NAME, SERVICES_ADDRESS, VXLAN_NAME, VXLAN_PORT

log = logging.getLogger("corral.network.overlay")

FLOOD_MAC = "00:00:00:00:00:00"
_IFF_UP = 1


class OverlayError(CorralError):
    """Netlink refused a step (or is not there); the message names the step."""

    status = 503
    code = "overlay_error"


# -- what is wanted and what is there (plain data) ---------------------------------------------------------------


@dataclass(frozen=True)
class WantedOverlay:
    vni: int
    local: str  # this host's underlay address
    mtu: int
    peers: frozenset[str]  # the peers' underlay addresses
    port: int = VXLAN_PORT
    vxlan: bool = True  # False: routed over WireGuard (network/routing.py): no VXLAN device, only the bridge's parts

    def __post_init__(self) -> None:
        for address in (self.local, *self.peers):
            try:
                ipaddress.IPv4Address(address)
            except ValueError as exc:
                raise InvalidInput(f"overlay: {address!r} is not an IPv4 address", field="network.host") from exc


@dataclass(frozen=True)
class VxlanLink:
    index: int
    vni: int
    local: str
    port: int
    learning: bool
    mtu: int
    master: int  # the index of the bridge it is enslaved to (0: none)
    up: bool


@dataclass(frozen=True)
class PresentOverlay:
    bridge: int | None  # index of corral0, None when Docker has not created it (yet)
    bridge_up: bool = False
    vxlan: VxlanLink | None = None
    flood_peers: frozenset[str] = frozenset()  # dst of the 00:00:00:00:00:00 entries on corralvx
    bridge_addresses: frozenset[str] = frozenset()  # "ADDRESS/PREFIX" on corral0


class StepKind(enum.StrEnum):
    DELETE_VXLAN = "delete-vxlan"
    CREATE_VXLAN = "create-vxlan"
    SET_VXLAN = "set-vxlan"  # mtu, master, up
    BRIDGE_UP = "bridge-up"
    FDB_ADD = "fdb-add"
    FDB_DEL = "fdb-del"
    ADDRESS_ADD = "address-add"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    reason: str
    peer: str = ""  # FDB_ADD / FDB_DEL


@dataclass(frozen=True)
class OverlayPlan:
    steps: tuple[Step, ...] = ()
    waiting: str = ""  # why nothing can be done yet ("" when the plan is complete)

    @property
    def converged(self) -> bool:
        return not self.steps and not self.waiting


def plan_overlay(want: WantedOverlay, have: PresentOverlay) -> OverlayPlan:
    """The steps that make `have` what `want` says (pure). Order: device, bridge, addresses, fdb deletes, adds."""
    if have.bridge is None:
        return OverlayPlan(waiting=f"bridge {BRIDGE_NAME} does not exist yet (the Docker network is missing)")
    steps: list[Step] = []
    vxlan = have.vxlan
    flood = have.flood_peers
    if not want.vxlan:
        if vxlan is not None:
            steps.append(Step(StepKind.DELETE_VXLAN, f"{VXLAN_NAME} is not wanted: the overlay is routed"))
        return OverlayPlan(tuple(steps + _bridge_steps(have)))
    if vxlan is not None:
        differs = [
            name
            for name, ok in (
                ("vni", vxlan.vni == want.vni),
                ("local address", vxlan.local == want.local),
                ("port", vxlan.port == want.port),
                ("learning", not vxlan.learning),
            )
            if not ok
        ]
        if differs:
            steps.append(Step(StepKind.DELETE_VXLAN, f"{VXLAN_NAME} has another {', '.join(differs)}"))
            vxlan = None
    if vxlan is None:
        steps.append(Step(StepKind.CREATE_VXLAN, f"{VXLAN_NAME} is missing"))
        steps.append(Step(StepKind.SET_VXLAN, f"{VXLAN_NAME} must join {BRIDGE_NAME} and be up"))
        flood = frozenset()  # a new device has no entries
    else:
        wrong = [
            what
            for what, ok in (
                (f"mtu {vxlan.mtu} is not {want.mtu}", vxlan.mtu == want.mtu),
                (f"not enslaved to {BRIDGE_NAME}", vxlan.master == have.bridge),
                ("down", vxlan.up),
            )
            if not ok
        ]
        if wrong:
            steps.append(Step(StepKind.SET_VXLAN, f"{VXLAN_NAME}: {', '.join(wrong)}"))
    steps += _bridge_steps(have)
    for peer in sorted(flood - want.peers):
        steps.append(Step(StepKind.FDB_DEL, "no longer a peer", peer))
    for peer in sorted(want.peers - flood):
        steps.append(Step(StepKind.FDB_ADD, "peer without a flooding entry", peer))
    return OverlayPlan(tuple(steps))


def _bridge_steps(have: PresentOverlay) -> list[Step]:
    steps: list[Step] = []
    if not have.bridge_up:
        steps.append(Step(StepKind.BRIDGE_UP, f"{BRIDGE_NAME} is down"))
    if f"{SERVICES_ADDRESS}/32" not in have.bridge_addresses:
        steps.append(Step(StepKind.ADDRESS_ADD, f"{SERVICES_ADDRESS}/32 is not on {BRIDGE_NAME}"))
    return steps


def wanted_peers(local: str, peers: Iterable[str]) -> frozenset[str]:
    """The distinct peer addresses, without this host's own and without empty ones."""
    return frozenset(p for p in peers if p and p != local)


# -- netlink ----------------------------------------------------------------------------------------------------


@dataclass
class Overlay:
    """Reads and changes the overlay devices of the current network namespace (the agent runs inside its host's)."""

    def observe(self) -> PresentOverlay:
        try:
            with IPRoute() as ipr:
                return _observe(ipr)
        except CorralError:
            raise
        except Exception as exc:
            raise OverlayError(f"cannot read the overlay devices: {exc}") from exc

    def apply(self, want: WantedOverlay) -> OverlayPlan:
        """Make the namespace match `want`; return the plan that was run. Raises OverlayError naming the step."""
        try:
            with IPRoute() as ipr:
                have = _observe(ipr)
                plan = plan_overlay(want, have)
                for step in plan.steps:
                    _run(ipr, step, want, have)
                    log.info("overlay: %s%s (%s)", step.kind, f" {step.peer}" if step.peer else "", step.reason)
        except CorralError:
            raise
        except Exception as exc:
            raise OverlayError(f"cannot set up the overlay: {exc}") from exc
        return plan


def _observe(ipr: Any) -> PresentOverlay:
    bridges = ipr.link_lookup(ifname=BRIDGE_NAME)
    if not bridges:
        return PresentOverlay(bridge=None)
    bridge = int(bridges[0])
    bridge_link = ipr.get_links(bridge)[0]
    addresses = frozenset(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=bridge, family=2))
    found = ipr.link_lookup(ifname=VXLAN_NAME)
    if not found:
        return PresentOverlay(bridge, bool(bridge_link["flags"] & _IFF_UP), None, frozenset(), addresses)
    index = int(found[0])
    link = ipr.get_links(index)[0]
    info = link.get("IFLA_LINKINFO")
    data = info.get("IFLA_INFO_DATA") if info is not None else None
    kind = info.get("IFLA_INFO_KIND") if info is not None else None
    if kind != "vxlan" or data is None:
        vxlan = VxlanLink(index, -1, "", -1, True, 0, 0, False)  # not a vxlan at all: the plan replaces it
    else:
        vxlan = VxlanLink(
            index=index,
            vni=int(data.get("IFLA_VXLAN_ID") or 0),
            local=str(data.get("IFLA_VXLAN_LOCAL") or ""),
            port=int(data.get("IFLA_VXLAN_PORT") or 0),
            learning=bool(data.get("IFLA_VXLAN_LEARNING")),
            mtu=int(link.get("IFLA_MTU") or 0),
            master=int(link.get("IFLA_MASTER") or 0),
            up=bool(link["flags"] & _IFF_UP),
        )
    flood = frozenset(
        str(entry.get("NDA_DST"))
        for entry in ipr.fdb("dump", ifindex=index)
        if entry["ifindex"] == index and entry.get("NDA_LLADDR") == FLOOD_MAC and entry.get("NDA_DST")
    )
    return PresentOverlay(bridge, bool(bridge_link["flags"] & _IFF_UP), vxlan, flood, addresses)


def _run(ipr: Any, step: Step, want: WantedOverlay, have: PresentOverlay) -> None:
    def vxlan_index() -> int:
        found = ipr.link_lookup(ifname=VXLAN_NAME)
        if not found:
            raise OverlayError(f"{step.kind}: {VXLAN_NAME} vanished")
        return int(found[0])

    try:
        if step.kind is StepKind.DELETE_VXLAN:
            ipr.link("del", index=vxlan_index())
        elif step.kind is StepKind.CREATE_VXLAN:
            ipr.link(
                "add",
                ifname=VXLAN_NAME,
                kind="vxlan",
                vxlan_id=want.vni,
                vxlan_local=want.local,
                vxlan_port=want.port,
                vxlan_learning=0,
            )
        elif step.kind is StepKind.SET_VXLAN:
            ipr.link("set", index=vxlan_index(), mtu=want.mtu, master=have.bridge, state="up")
        elif step.kind is StepKind.BRIDGE_UP:
            ipr.link("set", index=have.bridge, state="up")
        elif step.kind is StepKind.ADDRESS_ADD:
            ipr.addr("add", index=have.bridge, address=SERVICES_ADDRESS, prefixlen=32)
        elif step.kind is StepKind.FDB_ADD:
            ipr.fdb("append", ifindex=vxlan_index(), lladdr=FLOOD_MAC, dst=step.peer)
        elif step.kind is StepKind.FDB_DEL:
            ipr.fdb("del", ifindex=vxlan_index(), lladdr=FLOOD_MAC, dst=step.peer)
    except CorralError:
        raise
    except Exception as exc:
        what = f"{step.kind} {step.peer}".strip()
        raise OverlayError(f"overlay step {what} failed: {exc}") from exc
