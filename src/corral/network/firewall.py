"""The overlay's UDP filter on one host: its VXLAN and WireGuard ports accept packets only from the environment's
peers (issue 13).

Why: Linux's VXLAN socket listens on every address of the host, so without a filter anyone who can reach the host
could inject frames onto its `corral0` bridge with the environment's VNI. With encryption on, VXLAN is accepted only
from a peer's transit address arriving on the WireGuard interface (so only after WireGuard authenticated it), and
WireGuard's port only from the peers' underlay addresses; with encryption off, VXLAN only from the peers' underlay
addresses. Everything else to those ports is dropped.

The rules live in a chain of their own, `CORRAL-OVERLAY`, jumped to from INPUT for UDP; `chain_rules` is pure and
writes them exactly as `iptables -S` prints them, so `Firewall.apply` compares and replaces the whole chain at once
(`iptables-restore --noflush`) only when it differs. `Firewall.remove` takes the jump and the chain away.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from corral.model.network import VXLAN_PORT
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.firewall")

CHAIN = "CORRAL-OVERLAY"
JUMP = ("INPUT", "-p", "udp", "-j", CHAIN)
COMMAND_SECONDS = 15.0


@dataclass(frozen=True)
class WantedFilter:
    vxlan_port: int = VXLAN_PORT
    vxlan_sources: frozenset[str] = frozenset()  # addresses VXLAN is accepted from
    vxlan_interface: str = ""  # and only on this interface (the WireGuard one), "" for any
    wireguard_port: int = 0  # 0: no WireGuard
    wireguard_sources: frozenset[str] = frozenset()


def chain_rules(want: WantedFilter) -> list[str]:
    """The chain's rules as `iptables -S CHAIN` prints them (pure): accept (RETURN) each source, then drop."""
    rules = [f"-N {CHAIN}"]
    if want.wireguard_port:
        for source in sorted(want.wireguard_sources):
            rules.append(f"-A {CHAIN} -s {source}/32 -p udp -m udp --dport {want.wireguard_port} -j RETURN")
        rules.append(f"-A {CHAIN} -p udp -m udp --dport {want.wireguard_port} -j DROP")
    on = f" -i {want.vxlan_interface}" if want.vxlan_interface else ""
    for source in sorted(want.vxlan_sources):
        rules.append(f"-A {CHAIN} -s {source}/32{on} -p udp -m udp --dport {want.vxlan_port} -j RETURN")
    rules.append(f"-A {CHAIN} -p udp -m udp --dport {want.vxlan_port} -j DROP")
    return rules


def restore_input(rules: Iterable[str]) -> str:
    """`iptables-restore --noflush` input that replaces the chain's rules (declaring a chain flushes it)."""
    body = [rule for rule in rules if not rule.startswith("-N ")]
    return "\n".join(["*filter", f":{CHAIN} - [0:0]", *body, "COMMIT"]) + "\n"


def _iptables(*args: str, stdin: str | None = None, binary: str = "iptables") -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [binary, "-w", "5", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise OverlayError(f"{binary} is not installed: the overlay's UDP filter needs it") from exc
    except subprocess.TimeoutExpired as exc:
        raise OverlayError(f"{binary} did not answer within {COMMAND_SECONDS:g} s") from exc


class Firewall:
    """Keeps the chain as wanted in the current network namespace."""

    def apply(self, want: WantedFilter) -> bool:
        """Replace the chain when it differs and make sure INPUT jumps to it; True when something changed."""
        rules = chain_rules(want)
        shown = _iptables("-S", CHAIN)
        changed = False
        if shown.returncode != 0 or shown.stdout.splitlines() != rules:
            done = _iptables("--noflush", stdin=restore_input(rules), binary="iptables-restore")
            if done.returncode != 0:
                raise OverlayError(f"cannot write the overlay's UDP filter: {done.stderr.strip()[:300]}")
            log.info("firewall: %s holds %d rules", CHAIN, len(rules) - 1)
            changed = True
        if _iptables("-C", *JUMP).returncode != 0:
            done = _iptables("-I", *JUMP[:1], "1", *JUMP[1:])
            if done.returncode != 0:
                raise OverlayError(f"cannot jump to the overlay's UDP filter: {done.stderr.strip()[:300]}")
            changed = True
        return changed

    def remove(self) -> None:
        while _iptables("-C", *JUMP).returncode == 0:
            if _iptables("-D", *JUMP).returncode != 0:
                break
        _iptables("-F", CHAIN)
        _iptables("-X", CHAIN)
