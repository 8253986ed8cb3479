"""What the views of an environment read: its hosts, services, slots and the container reported for each slot, at
one version of the in-memory state (`EnvironmentState`), and the list bodies rendered from it.

Why a module of its own, and why derived: list calls read this state on every call, and under load the state
changes several times a second (agents report, scale calls land). Building it again from the snapshot joins every
slot to its report and sorts them all (30,000 of each at the P3 size). So a new version is derived from the last one
built, with what changed between the two (`ClusterState.changes_since`): only the slots, reports, hosts and services
named there are looked at again. A full build stays the fallback (no earlier build, a history that does not reach
back, or a large change) and the reference: tests compare the two after any sequence of writes.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from corral.config import load_settings
from corral.model.entities import Host, ObservedContainer
from corral.model.stack import Service, SlotRecord, Stack
from corral.runtime.labels import CONTAINER as CONTAINER_LABEL
from corral.server.views.paging import dumps, kept
from corral.state.cluster import ClusterState
from corral.state.snapshot import ClusterSnapshot, slot_order
from corral.store.changes import write_version
from corral.store.journal import Key
from corral.store.repository import Store
from corral.store.stacks import StackStore

# stack store -> environment id -> (write version it was read at, state): list calls under load reuse one read
_STATES: weakref.WeakKeyDictionary[StackStore, dict[str | None, tuple[int, EnvironmentState]]] = (
    weakref.WeakKeyDictionary()
)
# stack store -> the in-memory state views read instead of the database (server/app.py registers it)
_MEMORY: weakref.WeakKeyDictionary[StackStore, ClusterState] = weakref.WeakKeyDictionary()
# stack store -> environment id -> the state built last from the current snapshot, with that snapshot
_BUILT: weakref.WeakKeyDictionary[StackStore, dict[str | None, Built]] = weakref.WeakKeyDictionary()
# above this many changed entities, a full build is cheaper than looking at each one
MAX_DERIVED_CHANGES = 5000


def read_from_memory(stacks: StackStore, state: ClusterState) -> None:
    """Views of this stack store's entities are built from `state`'s snapshots while it is fresh."""
    _MEMORY[stacks] = state


@dataclass(frozen=True)
class EnvironmentState:
    hosts: dict[str, Host]
    services: list[Service]
    slots: list[SlotRecord]  # in `slot_order`
    observed: dict[str, ObservedContainer]  # slot id -> container on the slot's host
    now: float = 0.0
    deadline: float = 120.0  # seconds a container may stay not running after a change before it is an error
    version: int = 0  # the in-memory state's version this was built from (0: read from the database)
    stacks: list[Stack] = dataclasses.field(default_factory=list)  # by name (empty in `of_service`'s)
    # list views rendered from this read (shared by its copies with another `now`): key -> (when, JSON bytes)
    _renders: dict[object, tuple[float, bytes]] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    _render_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, compare=False, repr=False)
    # service id -> its slots in `slot_order` (made with the state when it was derived; on first use otherwise)
    _by_service: dict[str, list[SlotRecord]] | None = dataclasses.field(default=None, compare=False, repr=False)
    # service id -> a number that changes whenever what its view shows may have changed (but time): views made
    # from an earlier state with the same mark are the same (stack_views.py reuses them); None: not tracked
    marks: Mapping[str, int] | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, store: Store, stacks: StackStore, environment_id: str | None) -> EnvironmentState:
        """The environment's state (all environments for None); read again only after a database write. Callers that
        arrive while a read that started after their last write is running wait for it instead of reading too (under
        load, twenty list calls after one write make one read, not twenty). From the in-memory state's snapshot
        when one is registered and fresh (`read_from_memory`): no query at all."""
        memory = _MEMORY.get(stacks)
        if memory is not None and memory.fresh:
            return cls.of_snapshot(stacks, memory, environment_id)
        version = write_version()
        cached = _STATES.get(stacks, {}).get(environment_id)
        if cached is not None and cached[0] >= version:
            return dataclasses.replace(cached[1], now=time.time())
        with _FLIGHTS_LOCK:
            flights = _FLIGHTS.setdefault(stacks, {})
            flight = flights.get(environment_id)
            joined = flight is not None and flight.version >= version
            if not joined:
                flight = flights[environment_id] = _Flight(version)
        assert flight is not None
        if joined:
            flight.done.wait(timeout=_FLIGHT_WAIT_SECONDS)
            if flight.state is not None:
                return dataclasses.replace(flight.state, now=time.time())
            return cls.read(store, stacks, environment_id)  # that read failed or hangs: read on our own
        try:
            flight.state = cls.read(store, stacks, environment_id)
            states = _STATES.setdefault(stacks, {})
            current = states.get(environment_id)
            if current is None or current[0] <= version:
                states[environment_id] = (version, flight.state)
            return flight.state
        finally:
            flight.done.set()
            with _FLIGHTS_LOCK:
                if _FLIGHTS.get(stacks, {}).get(environment_id) is flight:
                    del _FLIGHTS[stacks][environment_id]

    @classmethod
    def of_snapshot(cls, stacks: StackStore, memory: ClusterState, environment_id: str | None) -> EnvironmentState:
        """The environment's state as the current snapshot holds it, made once per snapshot version."""
        return dataclasses.replace(cls.current(stacks, memory, environment_id).state, now=time.time())

    @classmethod
    def current(cls, stacks: StackStore, memory: ClusterState, environment_id: str | None) -> Built:
        """The state at the current snapshot, with that snapshot (the orchestrator's pass plans from both)."""
        snapshot = memory.snapshot()
        built = _BUILT.setdefault(stacks, {})
        cached = built.get(environment_id)
        if cached is not None and cached.state.version == snapshot.version:
            return cached
        with _BUILD_LOCK:  # twenty list calls after one write make it once; the others take that one
            cached = built.get(environment_id)
            if cached is not None and cached.state.version >= snapshot.version:
                return cached
            snapshot = memory.snapshot()  # the newest, for later waiters
            state = cls.derived(memory, cached, snapshot, environment_id) if cached is not None else None
            made = built[environment_id] = Built(state or cls.build(snapshot, environment_id), snapshot)
            return made

    @classmethod
    def build(cls, snapshot: ClusterSnapshot, environment_id: str | None) -> EnvironmentState:
        """The environment's state from the snapshot alone (the reference `derived` must equal)."""
        # without container counts (no view of a container shows them): the snapshot's own host objects
        hosts = {h.id: h for h in snapshot.hosts(environment_id)}
        slots = snapshot.slots(environment_id=environment_id)
        reports = snapshot.containers() if environment_id is None else snapshot.containers(hosts=hosts)
        observed = observed_of(slots, reports)
        services = snapshot.services(environment_id=environment_id)
        stacks = snapshot.stacks(environment_id)
        marks = {s.id: next(_MARKS) for s in services}
        version = snapshot.version
        return cls(hosts, services, slots, observed, time.time(), activating_deadline(), version, stacks, marks=marks)

    @classmethod
    def derived(
        cls, memory: ClusterState, built: Built, snapshot: ClusterSnapshot, environment_id: str | None
    ) -> EnvironmentState | None:
        """The state at `snapshot` made from the one `built` at an earlier snapshot and what changed between the
        two; None when that is not known (the history is shorter) or not worth it (a large change)."""
        changes = memory.changes_since(built.snapshot.version)
        if changes is None or "environments" in changes:
            return None  # (changes after `snapshot` too: looking at more entities than needed changes nothing)
        if sum(len(keys) for keys in changes.values()) > MAX_DERIVED_CHANGES:
            return None
        return _Derivation(built, snapshot, environment_id).state(changes)

    @classmethod
    def at_snapshot(
        cls, stacks: StackStore, memory: ClusterState, snapshot: ClusterSnapshot, environment_id: str | None
    ) -> EnvironmentState:
        """The environment's state as one given snapshot holds it (a watch renders an older version too); the one
        list calls share when it is the version they built."""
        cached = _BUILT.setdefault(stacks, {}).get(environment_id)
        if cached is not None and cached.state.version == snapshot.version:
            return dataclasses.replace(cached.state, now=time.time())
        return cls.build(snapshot, environment_id)

    @classmethod
    def of_service(cls, store: Store, stacks: StackStore, service: Service) -> EnvironmentState:
        """Just enough state for `service_view` of one primary (not sidekick) service: its own slots and the
        containers reported on their hosts, read fresh (a `scale` answers without reading the whole environment);
        from the in-memory state while it is fresh (it has every commit applied before the commit returns)."""
        memory = _MEMORY.get(stacks)
        if memory is not None and memory.fresh:
            snapshot = memory.snapshot()
            records = snapshot.slots(service_id=service.id)
            hosts = {host_id: snapshot.get("hosts", host_id) for host_id in {r.slot.host_id for r in records}}
            placed = {host_id: host for host_id, host in hosts.items() if host is not None}
            observed = observed_of(records, snapshot.containers_of_slots(r.slot.id for r in records))
            return cls(placed, [service], records, observed, time.time(), activating_deadline(), snapshot.version)
        slots = stacks.list_slots(service_id=service.id)
        host_ids = {r.slot.host_id for r in slots}
        reports = store.host_containers_of(host_ids, labelled=(CONTAINER_LABEL, [r.slot.id for r in slots]))
        observed = observed_of(slots, reports)
        return cls(store.hosts_by_id(host_ids), [service], slots, observed, time.time(), activating_deadline())

    @classmethod
    def read(cls, store: Store, stacks: StackStore, environment_id: str | None) -> EnvironmentState:
        hosts = {h.id: h for h in store.list_hosts(environment_id)}
        slots = sorted(stacks.list_slots(environment_id=environment_id), key=slot_order)  # the database's collation
        observed = observed_of(slots, store.list_all_host_containers(environment_id))
        services = stacks.list_services(environment_id=environment_id)
        listed = stacks.list_stacks(environment_id)
        return cls(hosts, services, slots, observed, time.time(), activating_deadline(), stacks=listed)

    def rendered(self, key: object, build: Callable[[], object]) -> bytes:
        """The JSON of a list view of this state, built once for all the calls that read the same state (twenty
        clients listing 6,000 containers between two writes encode them once, not twenty times). Reused for at most
        `RENDER_SECONDS`: views say how long containers have not been running."""
        with self._render_lock:
            made = self._renders.get(key)
            if made is not None and time.time() - made[0] < RENDER_SECONDS:
                return made[1]
            body = kept(dumps(build()))
            if len(self._renders) >= MAX_RENDERS:  # pages of a long walk over one state: keep the recent ones
                cutoff = time.time() - RENDER_SECONDS
                for stale in [k for k, (when, _) in self._renders.items() if when < cutoff]:
                    del self._renders[stale]
            self._renders[key] = (time.time(), body)
            return body

    def slots_of(self, service_id: str) -> list[SlotRecord]:
        return self.slots_by_service.get(service_id, [])

    @property
    def slots_by_service(self) -> dict[str, list[SlotRecord]]:
        if self._by_service is None:
            index: dict[str, list[SlotRecord]] = {}
            for record in self.slots:
                index.setdefault(record.service_id, []).append(record)
            object.__setattr__(self, "_by_service", index)  # a cache of what the frozen fields hold
            return index
        return self._by_service

    @functools.cached_property
    def services_by_id(self) -> dict[str, Service]:
        return {s.id: s for s in self.services}

    @functools.cached_property
    def services_by_stack(self) -> dict[str, list[Service]]:
        index: dict[str, list[Service]] = {}
        for service in self.services:
            index.setdefault(service.stack_id, []).append(service)
        return index


@dataclass(frozen=True)
class Built:
    state: EnvironmentState
    snapshot: ClusterSnapshot  # what it was made from (its reports and slots before the next changes)


class _Derivation:
    """`EnvironmentState.derived`: each part of the earlier state kept, or made again from only what changed."""

    def __init__(self, built: Built, snapshot: ClusterSnapshot, environment_id: str | None) -> None:
        self.before = built.snapshot
        self.previous = built.state
        self.snapshot = snapshot
        self.environment_id = environment_id

    def mine(self, environment_id: str) -> bool:
        return self.environment_id is None or environment_id == self.environment_id

    def slot(self, key: Key) -> SlotRecord | None:
        """The slot's record now, when it is of this environment."""
        record: SlotRecord | None = self.snapshot.get("slots", key)
        return record if record is not None and self.mine(record.slot.environment_id) else None

    def state(self, changes: Mapping[str, set[Key]]) -> EnvironmentState:
        previous, snapshot = self.previous, self.snapshot
        moved: set[str] = set()  # hosts that came, went or show another name or address
        hosts = self.hosts(changes.get("hosts", set()), moved)
        services = previous.services
        remarked = {str(key) for key in changes.get("services", ())}
        if remarked:
            services = snapshot.services(environment_id=self.environment_id)
        changed_slots = {str(key) for key in changes.get("slots", ())}
        slots = self.slots(changed_slots) if changed_slots else previous.slots
        reported = {self.before.get("slots", key) for key in changed_slots}  # the slots' old records: their hosts
        touched = set(changed_slots)
        for key in changes.get("containers", ()):
            for table in (self.before, snapshot):
                container = table.get("containers", key)
                if container is not None and (slot_id := container.labels.get(CONTAINER_LABEL)):
                    touched.add(slot_id)
        observed = self.observed(touched) if touched else previous.observed
        by_service = previous.slots_by_service
        if changed_slots:
            records = [r for r in reported if r is not None]
            records += [r for key in changed_slots if (r := snapshot.get("slots", key)) is not None]
            by_service = self.by_service(by_service, {r.service_id for r in records})
        for table in (self.before, snapshot):
            remarked.update(r.service_id for key in touched if (r := table.get("slots", key)) is not None)
            remarked.update(r.service_id for host_id in moved for r in table.slots(host_id=host_id))
        marks = previous.marks or {}
        if remarked or services is not previous.services:
            old = marks
            marks = {s.id: next(_MARKS) if s.id in remarked or s.id not in old else old[s.id] for s in services}
        return EnvironmentState(
            hosts,
            services,
            slots,
            observed,
            time.time(),
            previous.deadline,
            snapshot.version,
            snapshot.stacks(self.environment_id) if changes.get("stacks") else previous.stacks,
            _by_service=by_service,
            marks=marks,
        )

    def hosts(self, changed: set[Key], moved: set[str]) -> dict[str, Host]:
        """The hosts now; `moved` gets those a view shows otherwise."""
        previous = self.previous.hosts
        if not changed:
            return previous
        hosts = dict(previous)
        ordered = True  # no host came, went or was renamed: the name order holds
        for key in map(str, changed):
            host: Host | None = self.snapshot.get("hosts", key)
            was = hosts.get(key)
            if host is None or not self.mine(host.environment_id):
                if hosts.pop(key, None) is not None:
                    moved.add(key)
                    ordered = False
                continue
            if was is None or was.name != host.name or was.address != host.address:
                moved.add(key)
                ordered = ordered and was is not None and was.name == host.name
            hosts[key] = host
        return hosts if ordered else self.all_hosts()

    def all_hosts(self) -> dict[str, Host]:
        return {h.id: h for h in self.snapshot.hosts(self.environment_id)}

    def slots(self, changed: set[str]) -> list[SlotRecord]:
        kept = [r for r in self.previous.slots if r.slot.id not in changed]
        for key in changed:
            if (record := self.slot(key)) is not None:
                bisect.insort(kept, record, key=slot_order)
        return kept

    def observed(self, touched: set[str]) -> dict[str, ObservedContainer]:
        observed = dict(self.previous.observed)
        for slot_id in touched:
            observed.pop(slot_id, None)
            record = self.slot(slot_id)
            if record is None:
                continue
            host_id = record.slot.host_id
            host: Host | None = self.snapshot.get("hosts", host_id)
            if host is None or not self.mine(host.environment_id):  # (as a build, which reads the env's hosts)
                continue
            found = observed_of([record], (c for c in self.snapshot.containers_of_slots([slot_id]) if c[0] == host_id))
            observed.update(found)
        return observed

    def by_service(self, previous: dict[str, list[SlotRecord]], changed: set[str]) -> dict[str, list[SlotRecord]]:
        index = dict(previous)
        for service_id in changed:
            records = [r for r in self.snapshot.slots(service_id=service_id) if self.mine(r.slot.environment_id)]
            if records:
                index[service_id] = records
            else:
                index.pop(service_id, None)
        return index


@dataclass
class _Flight:
    """One running read of an environment's state, which later callers may wait for."""

    version: int  # the write version noted before the read began
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    state: EnvironmentState | None = None


_FLIGHTS: weakref.WeakKeyDictionary[StackStore, dict[str | None, _Flight]] = weakref.WeakKeyDictionary()
_FLIGHTS_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()
_FLIGHT_WAIT_SECONDS = 60.0
_MARKS = itertools.count(1)
RENDER_SECONDS = 1.0
MAX_RENDERS = 256


def observed_of(
    slots: list[SlotRecord], reports: Iterable[tuple[str, ObservedContainer]]
) -> dict[str, ObservedContainer]:
    """Slot id -> the container reported for it on the slot's host (`reported_for_slots`)."""
    reported = reported_for_slots(reports)
    return {r.slot.id: reported[(r.slot.host_id, r.slot.id)] for r in slots if (r.slot.host_id, r.slot.id) in reported}


def reported_for_slots(reports: Iterable[tuple[str, ObservedContainer]]) -> dict[tuple[str, str], ObservedContainer]:
    """(host id, slot id) -> the container reported for the slot on that host: a running one before others, then
    the highest docker id (one rule whatever order the reports come in, so a derived state equals a built one)."""
    reported: dict[tuple[str, str], ObservedContainer] = {}
    for host_id, container in reports:
        slot_id = container.labels.get(CONTAINER_LABEL)
        if slot_id:
            current = reported.get((host_id, slot_id))
            if current is None or _rank(container) > _rank(current):
                reported[(host_id, slot_id)] = container
    return reported


def _rank(container: ObservedContainer) -> tuple[bool, str]:
    return (container.state == "running", container.docker_id)


@functools.cache
def activating_deadline() -> float:
    """CORRAL_ACTIVATING_DEADLINE_SECONDS, read once per process (views are built on every API call)."""
    return load_settings().activating_deadline_seconds
