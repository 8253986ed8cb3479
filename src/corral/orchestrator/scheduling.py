"""Placement for the Cattle orchestrator: which active host takes the next container of a service, and why none can.

Why a module of its own: the reconciler (`reconciling.py`) decides *what* must exist; this module decides *where*.
It spreads like SwarmKit (fewest containers of this service, then fewest containers in total, then host name) and
batches identical placements like Nomad and SwarmKit: host loads are counted once, feasible hosts sit in a heap and
only the host that was just picked is re-scored, so N placements on H hosts with S existing slots cost
O(S + H + N log H), never N x H x S. The only hard constraint of this first cut is host ports; labels, affinity and
arch come later. Why every "no" carries a sentence: operators see it in the API, CLI and UI, so it names the numbers.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot

Port = tuple[int, str]  # (host port, protocol)

# Hosts whose slots stay where they are: active ones, and reconnecting ones within their grace period.
STAYING_STATES = frozenset({HostState.ACTIVE, HostState.RECONNECTING})


@dataclass(frozen=True)
class HostView:
    """One host as the scheduler sees it."""

    id: str
    name: str
    state: HostState
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)  # hash=False: views stay hashable
    arch: str = ""


@dataclass(frozen=True)
class SlotView:
    """One container slot Corral has assigned (desired), plus what the agent reports about its container."""

    slot: ContainerSlot
    observed_state: str | None = None  # "running" | "exited" | "created" | ... | None before any agent report
    observed_hash: str | None = None  # io.corral.config-hash of the observed container, None if there is none
    published_ports: frozenset[Port] = frozenset()  # host ports this slot's launch config publishes

    @property
    def holds_its_ports(self) -> bool:
        """True when its container runs with the slot's own config: it has bound its host ports."""
        return self.observed_state == "running" and self.observed_hash == self.slot.config_hash


def format_port(port: Port) -> str:
    return f"{port[0]}/{port[1]}"


def format_ports(ports: Iterable[Port]) -> str:
    return ", ".join(format_port(p) for p in sorted(ports))


def ports_phrase(ports: Iterable[Port]) -> str:
    """ "port 80/tcp" or "ports 80/tcp, 443/tcp"."""
    items = sorted(ports)
    return f"port {format_port(items[0])}" if len(items) == 1 else f"ports {format_ports(items)}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class HostLoad:
    """Per-host counters for one reconcile: ports in use, slots in total, slots of the service being placed.

    Mutable on purpose, but private to one `reconcile` call: it is built from the snapshot and updated as the plan
    claims hosts, so later decisions of the same plan see earlier ones.
    """

    def __init__(self, hosts: Sequence[HostView]) -> None:
        self.hosts: dict[str, HostView] = {h.id: h for h in hosts}
        self.used: defaultdict[str, set[Port]] = defaultdict(set)
        self.own_used: defaultdict[str, set[Port]] = defaultdict(set)
        self.total: Counter[str] = Counter()
        self.own: Counter[str] = Counter()

    def conflicts(self, host_id: str, ports: frozenset[Port]) -> frozenset[Port]:
        used = self.used.get(host_id)
        return ports & used if used else frozenset()

    def claim(self, host_id: str, ports: Iterable[Port], *, own: bool) -> None:
        self.used[host_id].update(ports)
        self.total[host_id] += 1
        if own:
            self.own_used[host_id].update(ports)
            self.own[host_id] += 1


def inactive_summary(hosts: Iterable[HostView]) -> str:
    """E.g. "2 of 3 hosts are disconnected" or "2 of 5 hosts are not active (1 reconnecting, 1 disconnected)"."""
    states = [h.state for h in hosts]
    order = {state: i for i, state in enumerate(HostState)}
    inactive = Counter(s for s in states if s is not HostState.ACTIVE)
    count = sum(inactive.values())
    if not count:
        return ""
    verb = "is" if count == 1 else "are"
    head = f"{count} of {_plural(len(states), 'host')} {verb}"
    if len(inactive) == 1:
        return f"{head} {next(iter(inactive)).value}"
    parts = ", ".join(f"{n} {s.value}" for s, n in sorted(inactive.items(), key=lambda item: order[item[0]]))
    return f"{head} not active ({parts})"


def no_host_reason(load: HostLoad, ports: frozenset[Port], service: str) -> str:
    """Why no active host can take one more container of `service` (publishing `ports`) given the current load."""
    hosts = list(load.hosts.values())
    if not hosts:
        return "no hosts in the environment"
    summary = inactive_summary(hosts)
    active = [h for h in hosts if h.state is HostState.ACTIVE]
    if not active:
        return f"no active host in the environment: {summary}"
    count = len(active)
    blocked = {p: sum(1 for h in active if p in load.used.get(h.id, ())) for p in sorted(ports)}
    everywhere = [p for p, n in blocked.items() if n == count]
    where = "the only active host" if count == 1 else f"all {count} active hosts"
    if len(everywhere) == 1:
        text = f"port {format_port(everywhere[0])} is taken on {where}"
    elif everywhere:
        text = f"ports {format_ports(everywhere)} are taken on {where}"
    elif any(blocked.values()):
        spread = ", ".join(f"{format_port(p)} on {n}" for p, n in blocked.items() if n)
        text = f"each of the {count} active hosts has one of ports {format_ports(ports)} taken ({spread})"
    else:  # cannot happen while ports are the only constraint; kept so the sentence is never empty
        text = f"none of the {count} active hosts is feasible"
    own = sum(1 for h in active if load.own_used.get(h.id, set()) & ports)
    if own:
        runs = f"it already runs {service}" if count == 1 else f"{own} of them already run {service}"
        text += f"; {runs}, and a host takes one {service} container while it publishes {format_ports(ports)}"
    return f"{summary}; {text}" if summary else text


class SpreadPlacer:
    """Hands out active hosts for new slots of one service, best first, updating `load` as it goes.

    Heap entries are (slots of this service, slots in total, host name, host id). A host that takes a slot is
    pushed back with both counts plus one, unless the service publishes host ports: then the host is used up.
    """

    def __init__(self, load: HostLoad, ports: frozenset[Port], service: str) -> None:
        self._load = load
        self._ports = ports
        self._service = service
        self._heap = [
            (load.own[h.id], load.total[h.id], h.name, h.id)
            for h in load.hosts.values()
            if h.state is HostState.ACTIVE and not load.conflicts(h.id, ports)
        ]
        heapq.heapify(self._heap)
        self._reason: str | None = None

    def take(self) -> HostView | None:
        """The best feasible host, now charged with one more slot; None when no active host is feasible."""
        if not self._heap:
            return None
        own, total, name, host_id = heapq.heappop(self._heap)
        self._load.claim(host_id, self._ports, own=True)
        self._reason = None
        if not self._ports:
            heapq.heappush(self._heap, (own + 1, total + 1, name, host_id))
        return self._load.hosts[host_id]

    def reason(self) -> str:
        """Why `take` returned None (computed once per state of the load: many indexes share one reason)."""
        if self._reason is None:
            self._reason = no_host_reason(self._load, self._ports, self._service)
        return self._reason
