"""The host ports of the load balancers on this host, forwarded by the agent's NAT rules instead of Docker's port
publishing (issue 19: "the LB's own upgrade with start-first loses no connection").

Why: Docker gives a host port to one container only, so a start-first upgrade of an LB could never run the new
HAProxy beside the old one on the same `80:80`. LB containers are created without Docker's binding of their fixed
host ports (runtime/containers.py `publishes_through_agent`) and the agent DNATs each such port to one LB container
of the host: the newest one whose HAProxy has its configuration and listens (agent/lb.py). Switching the rule sends
new connections to the new container while conntrack keeps the established ones on the old one, which drains before
it stops (agent/drain.py).

`chain_rules` is pure and writes the chains as `iptables -S` prints them; `LbPorts.apply` replaces a chain only when
it differs (level-triggered, like network/services_nat.py). The nat chain is jumped to from PREROUTING and OUTPUT for
local destinations; the filter chain, first in FORWARD, accepts the forwarded connections into the bridge (Docker's
FORWARD refuses unpublished ports).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from corral.model.network import BRIDGE_NAME
from corral.network.firewall import _iptables
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.lb_ports")

CHAIN = "CORRAL-LB-PORTS"
NAT_JUMPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN)),
    ("OUTPUT", ("!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN)),
)
FILTER_JUMP: tuple[str, tuple[str, ...]] = ("FORWARD", ("-o", BRIDGE_NAME, "-j", CHAIN))


@dataclass(frozen=True, order=True)
class Forward:
    """Host port `host_port`/`protocol` goes to `address`:`container_port` (the LB container `name`)."""

    protocol: str
    host_port: int
    address: str
    container_port: int
    name: str = ""


def nat_rules(forwards: Sequence[Forward]) -> list[str]:
    """The nat chain as `iptables -t nat -S CHAIN` prints it (pure)."""
    rules = [f"-N {CHAIN}"]
    for f in sorted(forwards):
        rules.append(
            f"-A {CHAIN} -p {f.protocol} -m {f.protocol} --dport {f.host_port}"
            f" -j DNAT --to-destination {f.address}:{f.container_port}"
        )
    return rules


def filter_rules(forwards: Sequence[Forward]) -> list[str]:
    """The filter chain: forwarded new connections to each target, and what is established (pure)."""
    rules = [f"-N {CHAIN}"]
    for f in sorted(forwards):
        rules.append(
            f"-A {CHAIN} -d {f.address}/32 -p {f.protocol} -m {f.protocol} --dport {f.container_port}"
            " -m conntrack --ctstate DNAT -j ACCEPT"
        )
    if forwards:  # a connection that stays on a previous target after the switch
        rules.append(f"-A {CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    return rules


def _restore(table: str, rules: list[str]) -> str:
    body = [rule for rule in rules if not rule.startswith("-N ")]
    return "\n".join([f"*{table}", f":{CHAIN} - [0:0]", *body, "COMMIT"]) + "\n"


class LbPorts:
    """Keeps both chains and their jumps in the current network namespace."""

    def __init__(self) -> None:
        self.current: tuple[Forward, ...] | None = None  # what the chains hold (None: not written yet)

    def apply(self, forwards: Sequence[Forward]) -> bool:
        """Write the chains when they differ and make sure they are jumped to; True when something changed."""
        changed = False
        for table, rules in (("nat", nat_rules(forwards)), ("filter", filter_rules(forwards))):
            shown = _iptables("-t", table, "-S", CHAIN)
            if shown.returncode != 0 or shown.stdout.splitlines() != rules:
                done = _iptables("--noflush", stdin=_restore(table, rules), binary="iptables-restore")
                if done.returncode != 0:
                    raise OverlayError(f"cannot write the load balancers' port rules: {done.stderr.strip()[:300]}")
                changed = True
        for chain, rule in NAT_JUMPS:
            if _iptables("-t", "nat", "-C", chain, *rule).returncode != 0:
                changed = True
                if _iptables("-t", "nat", "-A", chain, *rule).returncode != 0:
                    raise OverlayError(f"cannot jump from {chain} to the load balancers' port rules")
        chain, rule = FILTER_JUMP[0], FILTER_JUMP[1]
        listed = [line for line in _iptables("-S", chain).stdout.splitlines() if line.startswith("-A ")]
        wanted = f"-A {chain} " + " ".join(rule)
        docker = next((i for i, line in enumerate(listed) if " -j DOCKER" in line), len(listed))
        if wanted not in listed[:docker]:  # ahead of Docker's FORWARD rules (which refuse unpublished ports)
            while _iptables("-C", chain, *rule).returncode == 0:
                if _iptables("-D", chain, *rule).returncode != 0:
                    break
            if _iptables("-I", chain, "1", *rule).returncode != 0:
                raise OverlayError(f"cannot jump from {chain} to the load balancers' port rules")
            changed = True
        if changed or self.current != tuple(sorted(forwards)):
            text = ", ".join(f"{f.host_port}/{f.protocol} -> {f.name or f.address}" for f in sorted(forwards))
            log.info("load balancer ports: %s", text or "none")
        self.current = tuple(sorted(forwards))
        return changed

    def remove(self) -> None:
        for chain, rule in NAT_JUMPS:
            while _iptables("-t", "nat", "-C", chain, *rule).returncode == 0:
                if _iptables("-t", "nat", "-D", chain, *rule).returncode != 0:
                    break
        chain, rule = FILTER_JUMP[0], FILTER_JUMP[1]
        while _iptables("-C", chain, *rule).returncode == 0:
            if _iptables("-D", chain, *rule).returncode != 0:
                break
        for table in ("nat", "filter"):
            _iptables("-t", table, "-F", CHAIN)
            _iptables("-t", table, "-X", CHAIN)
