"""Placement for the Cattle orchestrator: which active host takes the next container of a service, and why none can.

Why a module of its own: the reconciler (`reconciling.py`) decides *what* must exist; this module decides *where*.
It spreads like SwarmKit (fewest containers of this service, then fewest containers in total, then host name) and
batches identical placements like Nomad and SwarmKit: host loads are counted once, feasible hosts sit in a heap and
only the host that was just picked is re-checked and re-scored (every constraint is per host, so a placement changes
nothing elsewhere), so N placements on H hosts with S existing slots cost O(S + H + N log H), never N x H x S. The
static half of feasibility (state, schedulable, arch, host_label rules, capacity) is memoised per class of identical
hosts (Nomad's computed classes). Hard constraints: host state and conditions, image arch, host_label and container
rules (`rules.py`), reservations, host ports. Soft rules rank hosts by how many of them (in order) a host satisfies,
which is Cattle's "drop soft rules, last first, until some host fits". Why every "no" carries a sentence: operators
see it in the API, CLI and UI, so it names the rule and the numbers.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.entities import HostState, normalise_arch
from corral.model.network import HELD_HOST_PORTS
from corral.model.stack import ContainerSlot
from corral.orchestrator.rules import NO_RULES, Kind, Rule, Rules, system_labels

Port = tuple[int, str]  # (host port, protocol)

# Hosts whose slots stay where they are: active ones, reconnecting ones within their grace period, and those whose
# engine is down (the agent talks; the engine comes back, the local supervisor revives it). None takes new ones.
STAYING_STATES = frozenset({HostState.ACTIVE, HostState.RECONNECTING, HostState.ENGINE_DOWN})


@dataclass(frozen=True)
class HostView:
    """One host as the scheduler sees it."""

    id: str
    name: str
    state: HostState
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)  # hash=False: views stay hashable
    arch: str = ""
    schedulable: bool = True  # False: cordoned / deactivated: no new containers, its containers stay
    evacuating: bool = False  # its containers move to other hosts (like a disconnected host's) when they can
    cpus: float = 0.0  # 0: unknown, no limit for CPU reservations
    memory_bytes: int = 0  # 0: unknown, no limit for memory reservations
    volumes: frozenset[str] = frozenset()  # its engine's volume names (orchestrator/volume_affinity.py)

    def class_key(self) -> tuple[object, ...]:
        """Hosts with equal keys are interchangeable for static feasibility (memoised per class)."""
        labels = tuple(sorted(self.labels.items()))
        return (self.state, self.schedulable, self.evacuating, self.arch, labels, self.cpus, self.memory_bytes)


@dataclass(frozen=True)
class SlotView:
    """One container slot Corral has assigned (desired), plus what the agent reports about its container."""

    slot: ContainerSlot
    observed_state: str | None = None  # "running" | "exited" | "created" | ... | None before any agent report
    observed_hash: str | None = None  # io.corral.config-hash of the observed container, None if there is none
    health: str = ""  # its container's health ("" when it has no health check or no container yet)
    published_ports: frozenset[Port] = frozenset()  # host ports this slot's launch config publishes
    labels: tuple[tuple[str, str], ...] = ()  # its service's launch labels (container_label rules match them)
    mem_reservation_bytes: int = 0  # its service's reservations (count against its host's capacity)
    cpu_reservation: float = 0.0

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
    """Per-host counters for one reconcile: ports in use, slots in total, slots of the service being placed,
    reservations, and (only for the keys and names the service's rules look at) container labels and names.

    Mutable on purpose. Either private to one `reconcile` call (built from the snapshot's other slots), or shared by
    the reconciles of one environment's pass (`shared`): then it holds every slot but the service being reconciled,
    whose slots the caller releases first, and each plan's claims stay in it for the next service. Either way it is
    updated as the plan claims hosts, so later decisions see earlier ones.
    """

    def __init__(self, hosts: Sequence[HostView], rules: Rules = NO_RULES) -> None:
        self.hosts: dict[str, HostView] = {h.id: h for h in hosts}
        self.used: defaultdict[str, Counter[Port]] = defaultdict(Counter)  # counted: a release keeps other holders'
        self.own_used: defaultdict[str, set[Port]] = defaultdict(set)
        self.total: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self.own_claimed: set[tuple[str, int]] = set()  # (host id, index) of the service's own claims
        self.mem: Counter[str] = Counter()
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.pairs: defaultdict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        self.names: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._keys = rules.watched_keys
        self._names = rules.watched_names
        self.is_shared = False
        self._classes: list[list[HostView]] | None = None

    @classmethod
    def shared(cls, hosts: Sequence[HostView], rules: Iterable[Rules]) -> HostLoad:
        """A load for a whole pass over an environment: it indexes every label key and container name that any of
        the environment's `rules` looks at, so that each service's rules find what they need."""
        load = cls(hosts)
        every = list(rules)
        load._keys = frozenset().union(*(r.watched_keys for r in every))
        load._names = frozenset().union(*(r.watched_names for r in every))
        load.is_shared = True
        return load

    @property
    def watches_labels(self) -> bool:
        return bool(self._keys)

    @property
    def watches_names(self) -> bool:
        return bool(self._names)

    def begin_service(self) -> None:
        """Forget the previous service's own counters (a shared load, before the next service's reconcile)."""
        self.own_used = defaultdict(set)
        self.own = Counter()
        self.own_claimed = set()

    def conflicts(self, host_id: str, ports: frozenset[Port]) -> frozenset[Port]:
        used = self.used.get(host_id)
        return ports & used.keys() if used else frozenset()

    def claim(
        self,
        host_id: str,
        ports: Iterable[Port],
        *,
        own: bool,
        labels: Iterable[tuple[str, str]] = (),
        name: str = "",
        mem: int = 0,
        cpu: float = 0.0,
    ) -> None:
        if ports:
            self.used[host_id].update(ports)
        self.total[host_id] += 1
        if own:
            if ports:
                self.own_used[host_id].update(ports)
            self.own[host_id] += 1
        if mem:
            self.mem[host_id] += mem
        if cpu:
            self.cpu[host_id] += cpu
        if self._keys and labels:
            self.pairs[host_id].update(p for p in labels if p[0] in self._keys)
        if name and name in self._names:
            self.names[host_id][name] += 1

    def host_classes(self) -> list[list[HostView]]:
        """The hosts grouped by `HostView.class_key` (computed once per load: a shared load serves many services)."""
        if self._classes is None:
            classes: defaultdict[tuple[object, ...], list[HostView]] = defaultdict(list)
            for host in self.hosts.values():
                classes[host.class_key()].append(host)
            self._classes = list(classes.values())
        return self._classes

    def claim_view(self, view: SlotView) -> None:
        """Claim another service's slot: its ports, labels, name and reservations."""
        s = view.slot
        labels = (*view.labels, *system_labels(s.stack, s.service)) if self._keys else ()
        self.claim(
            s.host_id,
            view.published_ports,
            own=False,
            labels=labels,
            name=s.name,
            mem=view.mem_reservation_bytes,
            cpu=view.cpu_reservation,
        )

    def release_view(self, view: SlotView) -> None:
        """Undo `claim_view` (a shared load, before the slot's own service is reconciled)."""
        s, host_id = view.slot, view.slot.host_id
        if view.published_ports:
            used = self.used[host_id]
            used.subtract(view.published_ports)
            for port in view.published_ports:
                if used[port] <= 0:
                    del used[port]
        self.total[host_id] -= 1
        if view.mem_reservation_bytes:
            self.mem[host_id] -= view.mem_reservation_bytes
        if view.cpu_reservation:
            self.cpu[host_id] -= view.cpu_reservation
        if self._keys:
            labels = (*view.labels, *system_labels(s.stack, s.service))
            self.pairs[host_id].subtract(p for p in labels if p[0] in self._keys)
        if s.name in self._names:
            self.names[host_id][s.name] -= 1

    def container_ok(self, host_id: str, rule: Rule) -> bool:
        return rule.containers_ok(self.pairs.get(host_id, Counter()), self.names.get(host_id, Counter()))


@dataclass(frozen=True)
class Demand:
    """What one more container of the service being placed needs, and what it brings to its host."""

    stack: str
    service: str
    ports: frozenset[Port] = frozenset()
    labels: tuple[tuple[str, str], ...] = ()  # launch labels plus system labels
    mem: int = 0
    cpu: float = 0.0
    rules: Rules = NO_RULES
    archs: frozenset[str] | None = None  # normalised; None: any arch

    def claim(self, load: HostLoad, host_id: str, index: int) -> None:
        name = f"{self.stack}-{self.service}-{index}" if load.watches_names else ""
        load.own_claimed.add((host_id, index))
        load.claim(host_id, self.ports, own=True, labels=self.labels, name=name, mem=self.mem, cpu=self.cpu)


def takes_new(host: HostView) -> bool:
    return host.state is HostState.ACTIVE and host.schedulable and not host.evacuating


_IMAGE_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7"}


def image_arch_name(arch: str) -> str:
    """An image's architecture as Docker spells it ("needs arm64"); hosts keep their uname spelling."""
    return _IMAGE_ARCH_NAMES.get(arch, arch)


def arch_ok(host: HostView, archs: frozenset[str] | None) -> bool:
    return archs is None or normalise_arch(host.arch) in archs


def held_ports_reason(ports: Iterable[Port]) -> str | None:
    """Why a container cannot publish `ports` anywhere because Corral itself holds them on every host, or None."""
    held = sorted(p for p in ports if p in HELD_HOST_PORTS)
    if not held:
        return None
    holders = "; ".join(f"{format_port(p)} by {HELD_HOST_PORTS[p]}" for p in held)
    return f"{ports_phrase(held)} {'is' if len(held) == 1 else 'are'} held on every host ({holders})"


def fits_capacity(host: HostView, demand: Demand, mem_used: int = 0, cpu_used: float = 0.0) -> bool:
    mem_ok = not demand.mem or not host.memory_bytes or mem_used + demand.mem <= host.memory_bytes
    cpu_ok = not demand.cpu or not host.cpus or cpu_used + demand.cpu <= host.cpus + 1e-9
    return mem_ok and cpu_ok


class Feasibility:
    """Hard and soft checks of one demand against hosts; the static half is memoised per host class."""

    def __init__(self, load: HostLoad, demand: Demand) -> None:
        self.load = load
        self.demand = demand
        self._static: dict[tuple[object, ...], bool] = {}
        self._host_rules = demand.rules.host_rules
        self._container_rules = demand.rules.container_rules
        self._held = held_ports_reason(demand.ports) is not None

    def static_ok(self, host: HostView) -> bool:
        key = host.class_key()
        known = self._static.get(key)
        if known is None:
            known = (
                not self._held
                and takes_new(host)
                and arch_ok(host, self.demand.archs)
                and all(r.host_ok(host.labels) for r in self._host_rules)
                and fits_capacity(host, self.demand)
            )
            self._static[key] = known
        return known

    @property
    def has_dynamic(self) -> bool:
        """Whether the load on a host can make it infeasible (ports, reservations or container rules)."""
        return bool(self.demand.ports or self.demand.mem or self.demand.cpu or self._container_rules)

    def dynamic_ok(self, host: HostView) -> bool:
        load, hid, demand = self.load, host.id, self.demand
        if demand.ports:
            used = load.used.get(hid)
            if used and not demand.ports.isdisjoint(used):
                return False
        if (demand.mem or demand.cpu) and not fits_capacity(host, demand, load.mem[hid], load.cpu[hid]):
            return False
        return all(load.container_ok(hid, r) for r in self._container_rules)

    def candidates(self) -> list[HostView]:
        """Every feasible host: the static checks once per host class, the dynamic ones per host when needed."""
        hosts = [h for group in self.load.host_classes() if self.static_ok(group[0]) for h in group]
        return [h for h in hosts if self.dynamic_ok(h)] if self.has_dynamic else hosts

    def ok(self, host: HostView) -> bool:
        return self.static_ok(host) and self.dynamic_ok(host)

    def tier(self, host: HostView) -> int:
        """How many soft rules, in order, the host satisfies (Cattle drops soft rules last first)."""
        count = 0
        for rule in self.demand.rules.soft:
            if rule.kind is Kind.HOST_LABEL:
                satisfied = rule.host_ok(host.labels)
            else:
                satisfied = self.load.container_ok(host.id, rule)
            if not satisfied:
                break
            count += 1
        return count


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


def format_bytes(count: int) -> str:
    if count >= 2**30:
        return f"{round(count / 2**30, 2):g} GiB"
    return f"{round(count / 2**20, 1):g} MiB"


def format_cpus(count: float) -> str:
    value = f"{round(count, 3):g}"
    return f"{value} CPU" if value == "1" else f"{value} CPUs"


def _all(count: int, total: int) -> str:
    """ "all 3 active hosts", "the only active host", "all 2 remaining active hosts"."""
    left = " remaining" if count < total else ""
    return f"the only{left} active host" if count == 1 else f"all {count}{left} active hosts"


def _of(count: int, total: int) -> str:
    left = " remaining" if count < total else ""
    return f"0 of {count}{left} active {'host' if count == 1 else 'hosts'}"


def _ports_text(load: HostLoad, hosts: Sequence[HostView], ports: frozenset[Port], service: str, total: int) -> str:
    count = len(hosts)
    blocked = {p: sum(1 for h in hosts if p in load.used.get(h.id, ())) for p in sorted(ports)}
    everywhere = [p for p, n in blocked.items() if n == count]
    where = _all(count, total)
    if len(everywhere) == 1:
        text = f"port {format_port(everywhere[0])} is taken on {where}"
    elif everywhere:
        text = f"ports {format_ports(everywhere)} are taken on {where}"
    else:
        spread = ", ".join(f"{format_port(p)} on {n}" for p, n in blocked.items() if n)
        text = f"each of the {count} active hosts has one of ports {format_ports(ports)} taken ({spread})"
    own = sum(1 for h in hosts if load.own_used.get(h.id, set()) & ports)
    if own:
        runs = f"it already runs {service}" if count == 1 else f"{own} of them already run {service}"
        text += f"; {runs}, and a host takes one {service} container while it publishes {format_ports(ports)}"
    return text


def _reservation_text(load: HostLoad, hosts: Sequence[HostView], demand: Demand) -> str | None:
    """Why no host in `hosts` has room for the demand's reservations, or None if some has."""
    if demand.mem and all(h.memory_bytes and load.mem[h.id] + demand.mem > h.memory_bytes for h in hosts):
        need = f"needs {format_bytes(demand.mem)} memory reserved"
        if all(demand.mem > h.memory_bytes for h in hosts):
            return f"{need}: the largest host has {format_bytes(max(h.memory_bytes for h in hosts))}"
        free = max(max(0, h.memory_bytes - load.mem[h.id]) for h in hosts)
        return f"{need}: the largest free host has {format_bytes(free)}"
    if demand.cpu and all(h.cpus and load.cpu[h.id] + demand.cpu > h.cpus + 1e-9 for h in hosts):
        need = f"needs {format_cpus(demand.cpu)} reserved"
        if all(demand.cpu > h.cpus + 1e-9 for h in hosts):
            return f"{need}: the largest host has {format_cpus(max(h.cpus for h in hosts))}"
        free_cpus = max(max(0.0, h.cpus - load.cpu[h.id]) for h in hosts)
        return f"{need}: the most free host has {format_cpus(free_cpus)}"
    return None


def no_host_reason(load: HostLoad, demand: Demand) -> str:
    """Why no active host can take one more container of the demand's service given the current load.

    Hosts go through the checks in a fixed order (conditions, arch, host_label rules, reservations, ports, container
    rules); the check that leaves no host names itself and its numbers.
    """
    hosts = list(load.hosts.values())
    if not hosts:
        return "no hosts in the environment"
    summary = inactive_summary(hosts)
    active = [h for h in hosts if h.state is HostState.ACTIVE]
    if not active:
        return f"no active host in the environment: {summary}"
    return f"{summary}; {_active_reason(load, demand, active)}" if summary else _active_reason(load, demand, active)


def _active_reason(load: HostLoad, demand: Demand, active: list[HostView]) -> str:
    dropped: list[tuple[str, str]] = []  # (host name, why it is out of the count), in check order
    text = _active_reason_text(load, demand, active, dropped)
    return f"{text} ({_dropped_text(dropped)})" if dropped else text


def _dropped_text(dropped: list[tuple[str, str]]) -> str:
    """ "left out: h4 (deactivated); h5, h6 (aarch64)": the hosts a "remaining" count does not include, and why."""
    names: dict[str, list[str]] = {}
    for name, why in dropped:
        names.setdefault(why, []).append(name)
    groups = []
    for why, hosts in names.items():
        shown = ", ".join(sorted(hosts)[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        groups.append(f"{shown} ({why})")
    return "left out: " + "; ".join(groups)


def _keep(hosts: list[HostView], ok: list[HostView], why: str, dropped: list[tuple[str, str]]) -> list[HostView]:
    """`ok`, noting every host of `hosts` it leaves out with `why`."""
    kept = {h.id for h in ok}
    dropped.extend((h.name, why) for h in hosts if h.id not in kept)
    return ok


def _active_reason_text(load: HostLoad, demand: Demand, active: list[HostView], dropped: list[tuple[str, str]]) -> str:
    total = len(active)
    hosts = [h for h in active if h.schedulable and not h.evacuating]
    if not hosts:
        off = sum(1 for h in active if not h.schedulable)
        parts = ", ".join(
            p for p in (f"{off} deactivated" if off else "", f"{total - off} evacuating" if off < total else "") if p
        )
        if total == 1:
            return f"the only active host takes no new containers ({parts})"
        return f"none of the {total} active hosts takes new containers ({parts})"
    held = held_ports_reason(demand.ports)
    if held is not None:
        return held
    for host in active:
        if not host.schedulable or host.evacuating:
            dropped.append((host.name, "deactivated" if not host.schedulable else "evacuating"))
    if demand.archs is not None:
        matching = [h for h in hosts if arch_ok(h, demand.archs)]
        if not matching:
            have = ", ".join(sorted({normalise_arch(h.arch) or "unknown" for h in hosts}))
            needs = " or ".join(sorted(image_arch_name(a) for a in demand.archs))
            return f"needs {needs}: {_of(len(hosts), total)} match (they have {have})"
        for host in hosts:
            if host not in matching:
                arch = normalise_arch(host.arch) or "unknown arch"
                dropped.append((host.name, f"{arch}, the image has no such build"))
        hosts = matching
    for rule in demand.rules.host_rules:
        matching = [h for h in hosts if rule.host_ok(h.labels)]
        if not matching:
            if rule.negated:
                verb = "matches" if len(hosts) == 1 else "match"
                return f"{rule.describe()}: {_all(len(hosts), total)} {verb}"
            return f"{rule.describe()}: {_of(len(hosts), total)} match"
        hosts = _keep(hosts, matching, f"fails {rule.describe()}", dropped)
    text = _reservation_text(load, hosts, demand)
    if text is not None:
        return text
    fitting = [h for h in hosts if fits_capacity(h, demand, load.mem[h.id], load.cpu[h.id])]
    hosts = _keep(hosts, fitting, "no room for the reservations", dropped)
    if demand.ports:
        free = [h for h in hosts if not load.conflicts(h.id, demand.ports)]
        if not free:
            return _ports_text(load, hosts, demand.ports, demand.service, total)
        hosts = _keep(hosts, free, f"{ports_phrase(demand.ports)} taken", dropped)
    for rule in demand.rules.container_rules:
        matching = [h for h in hosts if load.container_ok(h.id, rule)]
        if not matching:
            if rule.negated:
                verb = "runs" if len(hosts) == 1 else "run"
                return f"{rule.describe()}: {_all(len(hosts), total)} already {verb} one"
            what = "it" if rule.kind is Kind.CONTAINER else "a matching container"
            return f"{rule.describe()}: {_of(len(hosts), total)} run {what}"
        hosts = _keep(hosts, matching, f"fails {rule.describe()}", dropped)
    return f"none of the {_plural(total, 'active host')} is feasible"


class SpreadPlacer:
    """Hands out active hosts for new slots of one service, best first, updating `load` as it goes.

    Heap entries are (-soft rules satisfied, slots of this service, slots in total, host name, host id). A host that
    takes a slot is re-checked and pushed back with its new counts while it stays feasible (a host publishing the
    service's ports, or a `_ne` rule matching the service itself, uses it up).
    """

    def __init__(self, load: HostLoad, demand: Demand) -> None:
        self._load = load
        self._demand = demand
        self._feasible = Feasibility(load, demand)
        self._soft = bool(demand.rules.soft)
        if self._soft:
            self._heap = [self._entry(h) for h in self._feasible.candidates()]
        else:
            own, total = load.own.get, load.total.get
            self._heap = [(0, own(h.id, 0), total(h.id, 0), h.name, h.id) for h in self._feasible.candidates()]
        heapq.heapify(self._heap)
        self._reason: str | None = None

    def _entry(self, host: HostView) -> tuple[int, int, int, str, str]:
        tier = self._feasible.tier(host) if self._soft else 0
        return (-tier, self._load.own[host.id], self._load.total[host.id], host.name, host.id)

    def take(self, index: int = 0) -> HostView | None:
        """The best feasible host, now charged with slot `index`; None when no active host is feasible."""
        if not self._heap:
            return None
        host_id = heapq.heappop(self._heap)[-1]
        host = self._load.hosts[host_id]
        self._demand.claim(self._load, host_id, index)
        self._reason = None
        if self._feasible.dynamic_ok(host):
            heapq.heappush(self._heap, self._entry(host))
        return host

    def take_on(self, index: int, allowed: frozenset[str]) -> HostView | None:
        """Like `take`, among the hosts `allowed` only (a volume affinity); the others keep their place."""
        skipped: list[tuple[int, int, int, str, str]] = []
        found: tuple[int, int, int, str, str] | None = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            if entry[-1] in allowed:
                found = entry
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if found is None:
            return None
        host = self._load.hosts[found[-1]]
        self._demand.claim(self._load, host.id, index)
        self._reason = None
        if self._feasible.dynamic_ok(host):
            heapq.heappush(self._heap, self._entry(host))
        return host

    def reason(self) -> str:
        """Why `take` returned None (computed once per state of the load: many indexes share one reason)."""
        if self._reason is None:
            self._reason = no_host_reason(self._load, self._demand)
        return self._reason
