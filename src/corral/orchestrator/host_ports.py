"""Random host ports for `ports: ["80"]` entries: which host port each container gets, per host (pure).

Why here and pure: the server decides host ports like it decides placements, from the whole picture of one host
(the fixed host ports of every container there and the ports it already handed out), so that two containers never
get the same port and a container keeps its port for its whole life. Rancher picked them from its
`servicesPortRange`; ours is `CORRAL_HOST_PORT_RANGE` (default 49153-65535, above Linux's ephemeral range start).

Each slot's port is searched from a start that depends on the slot id, so a port freed by a removed container is not
at once handed to the next one, and the result does not depend on the order slots are listed in.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.errors import InvalidInput
from corral.model.network import HELD_HOST_PORTS

HostPort = tuple[int, str, int]  # (container port, protocol, host port)
DEFAULT_RANGE = "49153-65535"


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not 1 <= self.low <= self.high <= 65535:
            raise InvalidInput(
                f"host port range {self.low}-{self.high} must be within 1-65535, low to high",
                field="CORRAL_HOST_PORT_RANGE",
            )

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @classmethod
    def parse(cls, text: str) -> PortRange:
        low, dash, high = text.strip().partition("-")
        try:
            return cls(int(low), int(high) if dash else int(low))
        except ValueError:
            raise InvalidInput(
                f"host port range {text!r} must look like LOW-HIGH (e.g. {DEFAULT_RANGE})",
                field="CORRAL_HOST_PORT_RANGE",
            ) from None


@dataclass(frozen=True)
class PortNeed:
    """One slot's wish: the container ports it publishes on a host port of the server's choosing."""

    slot_id: str
    host_id: str
    wanted: tuple[tuple[int, str], ...]  # (container port, protocol), each once
    current: tuple[HostPort, ...] = ()  # what it was given before (stored with the slot)


@dataclass(frozen=True)
class Allocation:
    ports: dict[str, tuple[HostPort, ...]]  # slot id -> its host ports, in the order of `wanted`
    exhausted: dict[str, str] = field(default_factory=dict)  # slot id -> why some port could not be given


def allocate_host_ports(
    needs: Iterable[PortNeed],
    fixed: Mapping[str, Iterable[tuple[int, str]]],
    port_range: PortRange,
) -> Allocation:
    """Host ports for every need. `fixed`: host id -> (host port, protocol) pairs taken by fixed `HOST:CONTAINER`
    ports there. A slot keeps each port it had while it still wants it and nothing fixed took it since."""
    by_host: dict[str, list[PortNeed]] = defaultdict(list)
    for need in needs:
        by_host[need.host_id].append(need)
    ports: dict[str, tuple[HostPort, ...]] = {}
    exhausted: dict[str, str] = {}
    for host_id, host_needs in by_host.items():
        used: set[tuple[int, str]] = set(fixed.get(host_id, ())).union(HELD_HOST_PORTS)  # never Corral's own
        ordered = sorted(host_needs, key=lambda n: n.slot_id)
        kept: dict[str, dict[tuple[int, str], int]] = {}
        for need in ordered:  # first every slot keeps what it has, so a newcomer never takes a port away
            kept[need.slot_id] = _keep(need, used, port_range)
        for need in ordered:
            given = kept[need.slot_id]
            result: list[HostPort] = []
            for container_port, protocol in _unique(need.wanted):
                host_port = given.get((container_port, protocol))
                if host_port is None:
                    host_port = _free_port(need.slot_id, container_port, protocol, used, port_range)
                    if host_port is None:
                        exhausted[need.slot_id] = f"no free host port in {port_range} for {container_port}/{protocol}"
                        continue
                    used.add((host_port, protocol))
                result.append((container_port, protocol, host_port))
            ports[need.slot_id] = tuple(result)
    return Allocation(ports, exhausted)


def _unique(wanted: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    return list(dict.fromkeys(wanted))


def _keep(need: PortNeed, used: set[tuple[int, str]], port_range: PortRange) -> dict[tuple[int, str], int]:
    wanted = set(need.wanted)
    kept: dict[tuple[int, str], int] = {}
    for container_port, protocol, host_port in need.current:
        key = (container_port, protocol)
        if key in wanted and key not in kept and host_port in port_range and (host_port, protocol) not in used:
            kept[key] = host_port
            used.add((host_port, protocol))
    return kept


def _free_port(
    slot_id: str, container_port: int, protocol: str, used: set[tuple[int, str]], port_range: PortRange
) -> int | None:
    start = zlib.crc32(f"{slot_id}/{container_port}/{protocol}".encode()) % port_range.size
    for step in range(port_range.size):
        candidate = port_range.low + (start + step) % port_range.size
        if (candidate, protocol) not in used:
            return candidate
    return None
