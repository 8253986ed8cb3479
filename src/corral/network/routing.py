"""The routed half of the encrypted overlay on one host: each peer's slice is routed into the WireGuard interface,
no VXLAN (issue 13: "VXLAN may run inside the tunnel or be replaced by routing").

Why routing: VXLAN inside WireGuard hands the TUN device UDP packets, which userspace wireguard-go can neither
segment nor coalesce, so it ran at 0.05x plain VXLAN. Routed, the TUN gets the containers' own TCP packets, and
wireguard-go's TCP GSO/GRO moves 64 KiB per system call. It is also tighter: WireGuard's cryptokey routing accepts
from a peer only its transit address and its own slice (AllowedIPs), so a peer cannot speak for another host.

What is wanted, given the WireGuard interface, the bridge `corral0` and the peers' slices:
- one route `SLICE dev WG src GATEWAY` per peer (the host's own probes and answers leave from its gateway, an
  address the peers' AllowedIPs accept and route back), and `ADDRESS/32 dev WG` for a peer's container whose
  address is outside the peer's slice (`retain_ip`, `requested_ip`), `ADDRESS/32 dev corral0` for such a container
  here (stale ones removed; the interface's own transit route stays);
- `proxy_arp` on `corral0`: containers see the whole environment subnet as on-link and ARP for a peer's
  container; the host answers for addresses it routes elsewhere, then forwards;
- forwarding between the interface and the bridge accepted (Docker's FORWARD policy is DROP), no masquerading of
  overlay-to-overlay traffic (Docker masquerades everything from the subnet leaving through another interface), and
  TCP MSS clamped to the path MTU on the interface, so an environment whose MTU is above the tunnel's (old ones at
  1450) does not fragment.
`wanted_routes`, `route_differences` and `rules` are pure; `Routes.apply` is level-triggered like the others.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from corral.model.errors import CorralError
from corral.model.network import BRIDGE_NAME
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.routing")

COMMAND_SECONDS = 15.0
PROXY_ARP = "/proc/sys/net/ipv4/conf/{}/proxy_arp"


@dataclass(frozen=True)
class WantedRoutes:
    interface: str  # the WireGuard interface
    subnet: str  # the environment's subnet
    via_tunnel: frozenset[str]  # the peers' slices and their containers' addresses outside them (/32)
    on_bridge: frozenset[str] = frozenset()  # this host's containers' addresses outside its slice (/32)
    source: str = ""  # this host's gateway: the source of what the host itself sends into the tunnel


def route_differences(wanted: frozenset[str], present: Iterable[str]) -> tuple[list[str], list[str]]:
    """(destinations to add, destinations to delete) on one device (pure)."""
    have = set(present)
    return sorted(wanted - have), sorted(have - wanted)


def foreign_addresses(slice_: str, addresses: Iterable[str]) -> frozenset[str]:
    """The addresses (as /32) that are not in `slice_` (pure)."""
    network = ipaddress.IPv4Network(slice_) if slice_ else None
    return frozenset(f"{a}/32" for a in addresses if a and (network is None or ipaddress.IPv4Address(a) not in network))


def rules(want: WantedRoutes) -> list[tuple[str, str, tuple[str, ...]]]:
    """(table, chain, rule) that must be first in their chains (pure), options in `iptables -S` order."""
    wg, subnet = want.interface, want.subnet
    return [
        ("filter", "FORWARD", ("-s", subnet, "-d", subnet, "-i", wg, "-o", BRIDGE_NAME, "-j", "ACCEPT")),
        ("filter", "FORWARD", ("-s", subnet, "-d", subnet, "-i", BRIDGE_NAME, "-o", wg, "-j", "ACCEPT")),
        ("nat", "POSTROUTING", ("-s", subnet, "-d", subnet, "-o", wg, "-j", "RETURN")),
        (
            "mangle",
            "FORWARD",
            (
                "-o",
                wg,
                "-p",
                "tcp",
                "-m",
                "tcp",
                "--tcp-flags",
                "SYN,RST",
                "SYN",
                "-j",
                "TCPMSS",
                "--clamp-mss-to-pmtu",
            ),
        ),
    ]


def _iptables(table: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["iptables", "-w", "5", "-t", table, *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OverlayError(f"iptables -t {table} {' '.join(args[:2])} failed: {exc}") from exc


def _ensure_first(table: str, chain: str, rule: tuple[str, ...]) -> bool:
    """The rule at the top of the chain (Docker inserts its own at the top when it restarts); True when changed."""
    listed = _iptables(table, "-S", chain)
    if listed.returncode != 0:
        raise OverlayError(f"iptables -t {table} -S {chain}: {listed.stderr.strip()[:200]}")
    appended = [line for line in listed.stdout.splitlines() if line.startswith(f"-A {chain} ")]
    wanted = f"-A {chain} " + " ".join(rule)
    if appended and _same_rule(appended[0], wanted):
        return False
    while _iptables(table, "-D", chain, *rule).returncode == 0:
        pass
    done = _iptables(table, "-I", chain, "1", *rule)
    if done.returncode != 0:
        raise OverlayError(f"iptables -t {table} -I {chain}: {done.stderr.strip()[:200]}")
    return True


def _same_rule(printed: str, wanted: str) -> bool:
    """`iptables -S` prints subnets as given and /32 for hosts; compare ignoring that."""
    return printed.replace("/32", "") == wanted.replace("/32", "")


class Routes:
    """Routes, proxy ARP and forwarding rules of the routed encrypted overlay (in the current network namespace)."""

    def apply(self, want: WantedRoutes) -> list[str]:
        changed: list[str] = []
        try:
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=want.interface)
                if not found:
                    raise OverlayError(f"the WireGuard interface {want.interface} is missing")
                bridge = ipr.link_lookup(ifname=BRIDGE_NAME)
                if not bridge:
                    raise OverlayError(f"the bridge {BRIDGE_NAME} is missing")
                for index, name, wanted, hosts_only, source in (
                    (int(found[0]), want.interface, want.via_tunnel, False, want.source),
                    (int(bridge[0]), BRIDGE_NAME, want.on_bridge, True, ""),
                ):
                    present = _routes_on(ipr, index, hosts_only)
                    add, delete = route_differences(wanted, present)
                    add += sorted(d for d in wanted & present.keys() if present[d] != source)  # another source
                    for destination in delete:
                        ipr.route("del", dst=destination, oif=index)
                        changed.append(f"route {destination} removed from {name}")
                    for destination in add:
                        ipr.route("replace", dst=destination, oif=index, **({"prefsrc": source} if source else {}))
                        changed.append(f"route {destination} via {name}" + (f" src {source}" if source else ""))
            changed += _proxy_arp()
            for table, chain, rule in rules(want):
                if _ensure_first(table, chain, rule):
                    changed.append(f"{table} {chain}: {' '.join(rule)}")
        except CorralError:
            raise
        except Exception as exc:
            raise OverlayError(f"cannot route the overlay through {want.interface}: {exc}") from exc
        for what in changed:
            log.info("routing: %s", what)
        return changed

    def remove(self, want: WantedRoutes) -> None:
        """Take the rules away (routes go with the interface)."""
        for table, chain, rule in rules(want):
            while _iptables(table, "-D", chain, *rule).returncode == 0:
                pass


def _routes_on(ipr: Any, index: int, hosts_only: bool) -> dict[str, str]:
    """Destination -> preferred source of the main table's routes through the device, except its connected
    networks (proto kernel); only /32 ones when `hosts_only` (the bridge's other routes are Docker's)."""
    found: dict[str, str] = {}
    for route in ipr.get_routes(family=2, oif=index, table=254):
        if route["proto"] == 2 or (hosts_only and route["dst_len"] != 32):
            continue
        destination = str(ipaddress.IPv4Network(f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}"))
        found[destination] = str(route.get_attr("RTA_PREFSRC") or "")
    return found


def _proxy_arp() -> list[str]:
    path = Path(PROXY_ARP.format(BRIDGE_NAME))
    if path.read_text().strip() == "1":
        return []
    path.write_text("1\n")
    return [f"proxy_arp on {BRIDGE_NAME}"]
