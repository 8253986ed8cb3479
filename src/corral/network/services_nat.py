"""Where containers reach the host's DNS and metadata without Corral taking the host's ports 53 and 80 (issue 17
item 9).

Why NAT: containers ask `SERVICES_ADDRESS` on ports 53 (DNS) and 80 (metadata), as in Rancher, but a service that
publishes `80:80` or `53:53/udp` needs those ports on every address of the host (Docker's proxy binds 0.0.0.0). So
the agent's services listen on the services address at `DNS_LISTEN_PORT` / `METADATA_LISTEN_PORT` (ports the
scheduler counts as Corral's, model/network.py `HELD_HOST_PORTS`), and the NAT table rewrites the destination of
what is sent to the services address on 53 and 80, from containers (PREROUTING) and from the host itself (OUTPUT).
The source address stays the asker's, so DNS and metadata still know who asks. The jumps come first in both chains,
ahead of Docker's own DNAT for published ports, so a published 80 never captures the metadata's traffic.

`chain_rules` is pure and writes the rules as `iptables -t nat -S` prints them; `ServicesNat.apply` replaces the
chain only when it differs (level-triggered, like network/firewall.py) and `remove` takes it away.
"""

from __future__ import annotations

import logging

from corral.model.network import DNS_LISTEN_PORT, METADATA_LISTEN_PORT, SERVICES_ADDRESS
from corral.network.firewall import _iptables
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.services_nat")

CHAIN = "CORRAL-SERVICES"
FROM_CHAINS = ("PREROUTING", "OUTPUT")
DNS_PORT = 53
METADATA_PORT = 80


def chain_rules(
    address: str = SERVICES_ADDRESS, dns_port: int = DNS_LISTEN_PORT, metadata_port: int = METADATA_LISTEN_PORT
) -> list[str]:
    """The chain as `iptables -t nat -S CHAIN` prints it (pure)."""
    to = f"-d {address}/32"
    return [
        f"-N {CHAIN}",
        f"-A {CHAIN} {to} -p udp -m udp --dport {DNS_PORT} -j DNAT --to-destination {address}:{dns_port}",
        f"-A {CHAIN} {to} -p tcp -m tcp --dport {DNS_PORT} -j DNAT --to-destination {address}:{dns_port}",
        f"-A {CHAIN} {to} -p tcp -m tcp --dport {METADATA_PORT} -j DNAT --to-destination {address}:{metadata_port}",
    ]


def jump(chain: str, address: str = SERVICES_ADDRESS) -> tuple[str, ...]:
    return (chain, "-d", f"{address}/32", "-j", CHAIN)


def restore_input(rules: list[str]) -> str:
    """`iptables-restore --noflush` input that replaces the chain's rules (declaring a chain flushes it)."""
    body = [rule for rule in rules if not rule.startswith("-N ")]
    return "\n".join(["*nat", f":{CHAIN} - [0:0]", *body, "COMMIT"]) + "\n"


class ServicesNat:
    """Keeps the NAT chain and its jumps in the current network namespace."""

    def __init__(self, address: str = SERVICES_ADDRESS) -> None:
        self.address = address

    def apply(self) -> bool:
        """Write the chain when it differs and make both chains jump to it first; True when something changed."""
        rules = chain_rules(self.address)
        shown = _iptables("-t", "nat", "-S", CHAIN)
        changed = False
        if shown.returncode != 0 or shown.stdout.splitlines() != rules:
            done = _iptables("--noflush", stdin=restore_input(rules), binary="iptables-restore")
            if done.returncode != 0:
                raise OverlayError(f"cannot write the DNS and metadata NAT rules: {done.stderr.strip()[:300]}")
            log.info("nat: %s sends %s:53 and :80 to the agent's DNS and metadata", CHAIN, self.address)
            changed = True
        for chain in FROM_CHAINS:
            changed = self._first(chain) or changed
        return changed

    def _first(self, chain: str) -> bool:
        """Make the jump the first rule of `chain` (Docker inserts its own jumps at the top when it starts)."""
        rule = jump(chain, self.address)
        listed = _iptables("-t", "nat", "-S", chain)
        lines = [line for line in listed.stdout.splitlines() if line.startswith("-A ")]
        wanted = "-A " + " ".join(rule)
        if lines and lines[0] == wanted and lines.count(wanted) == 1:
            return False
        while _iptables("-t", "nat", "-C", *rule).returncode == 0:
            if _iptables("-t", "nat", "-D", *rule).returncode != 0:
                break
        done = _iptables("-t", "nat", "-I", chain, "1", *rule[1:])
        if done.returncode != 0:
            raise OverlayError(f"cannot jump to the DNS and metadata NAT rules: {done.stderr.strip()[:300]}")
        return True

    def remove(self) -> None:
        for chain in FROM_CHAINS:
            rule = jump(chain, self.address)
            while _iptables("-t", "nat", "-C", *rule).returncode == 0:
                if _iptables("-t", "nat", "-D", *rule).returncode != 0:
                    break
        _iptables("-t", "nat", "-F", CHAIN)
        _iptables("-t", "nat", "-X", CHAIN)
