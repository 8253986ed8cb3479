"""Compose networks as segments of the overlay on one host: a container on a stack's networks is reached only by
the containers that share one of them (issue 17 item 5).

Why a filter and not Docker networks: every container keeps its one overlay address (Corral's IPAM, DNS and
metadata answer there, other hosts route to it); a network is only who may reach whom. Each host drops, in the
forward path, packets to its own segmented containers from segmented containers that share no network with them
(other hosts do the same for theirs, so each pair is filtered where the packet arrives). A container on `internal:
true` networks only gets no egress: its host drops what it sends to any address outside the overlay's subnet (the
underlay, the host's upstream, the internet), before Docker's NAT would masquerade it; what it sends to overlay
addresses (other containers; service addresses are DNAT'd before this chain) passes. Containers on the flat
network (their stack declares no networks) are left alone, as in Rancher. Same-host traffic crosses the bridge,
which passes it to iptables (br_netfilter, which Docker turns on); traffic from other hosts is routed.

The rules live in the chain `CORRAL-SEGMENTS` of the mangle table, jumped to from its FORWARD chain: mangle is
traversed before the filter table, whose FORWARD chain accepts overlay traffic before Docker's `DOCKER-USER`
(network/routing.py keeps those accept rules first). `segment_rules` is pure and writes the rules as `iptables -S`
prints them, so `Segments.apply` replaces the chain only when it differs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from corral.model.network import ContainerRecord
from corral.network.firewall import _iptables
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.segments")

CHAIN = "CORRAL-SEGMENTS"
TABLE = ("-t", "mangle")
JUMP = ("FORWARD", "-j", CHAIN)


def segment_rules(containers: Iterable[ContainerRecord], host_id: str, subnet: str = "") -> list[str]:
    """`-A CHAIN -s SOURCE/32 -d LOCAL/32 -j DROP` for each segmented container here and each segmented source
    that shares no network with it, then `-A CHAIN -s LOCAL/32 ! -d SUBNET -j DROP` for each internal container
    here (pure; sorted, as compared with `iptables -S`)."""
    containers = list(containers)
    segmented = [c for c in containers if c.ip and c.networks]
    local = [c for c in segmented if c.host_id == host_id]
    drops = {
        (source.ip, target.ip)
        for target in local
        for source in segmented
        if source.ip != target.ip and not set(source.networks) & set(target.networks)
    }
    internal = sorted({c.ip for c in local if c.internal}) if subnet else []
    return (
        [f"-N {CHAIN}"]
        + [f"-A {CHAIN} -s {s}/32 -d {d}/32 -j DROP" for s, d in sorted(drops)]
        + [f"-A {CHAIN} -s {ip}/32 ! -d {subnet} -j DROP" for ip in internal]
    )


def restore_input(rules: Iterable[str]) -> str:
    """`iptables-restore --noflush` input that replaces the chain's rules (declaring a chain flushes it)."""
    body = [rule for rule in rules if not rule.startswith("-N ")]
    return "\n".join(["*mangle", f":{CHAIN} - [0:0]", *body, "COMMIT"]) + "\n"


class Segments:
    """Keeps the chain as wanted in the current network namespace."""

    def apply(self, containers: Iterable[ContainerRecord], host_id: str, subnet: str = "") -> bool:
        """Replace the chain when it differs and make sure mangle's FORWARD jumps to it; True when it changed."""
        rules = segment_rules(containers, host_id, subnet)
        shown = _iptables(*TABLE, "-S", CHAIN)
        changed = False
        if shown.returncode != 0 or shown.stdout.splitlines() != rules:
            done = _iptables("--noflush", stdin=restore_input(rules), binary="iptables-restore")
            if done.returncode != 0:
                raise OverlayError(f"cannot write the networks' filter: {done.stderr.strip()[:300]}")
            log.info("segments: %s holds %d rules", CHAIN, len(rules) - 1)
            changed = True
        if _iptables(*TABLE, "-C", *JUMP).returncode != 0:
            done = _iptables(*TABLE, "-A", *JUMP)
            if done.returncode != 0:
                raise OverlayError(f"cannot jump to the networks' filter: {done.stderr.strip()[:300]}")
            changed = True
        return changed

    def remove(self) -> None:
        while _iptables(*TABLE, "-C", *JUMP).returncode == 0:
            if _iptables(*TABLE, "-D", *JUMP).returncode != 0:
                break
        _iptables(*TABLE, "-F", CHAIN)
        _iptables(*TABLE, "-X", CHAIN)
