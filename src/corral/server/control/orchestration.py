"""The orchestrator loop: observe (a snapshot of the in-memory state, state/) → decide (one pure
`orchestrator/environment_plan.py` `plan_environment` per environment) → act (store each environment's plan in one
transaction, then the address and port passes; push each host's desired container set to its agent).

Why this shape: the decisions live in `corral.orchestrator` and are pure; this module only gathers inputs (with the
server's own state: desired-set revisions and the agents' acknowledgements, server/control/occupancy_pass.py), stores
plans and talks to agents. It is level-triggered: every pass plans from the current snapshot, never from what an
earlier pass did, so a lost message, a restarted server or a reconnecting agent converges on the next pass. Passes
run when something changed (`trigger()`; agents' reports at most every `OBSERVED_PASS_SECONDS`; never sooner than
`PASS_SPACING` times the last pass's length after it) and at least every `RESYNC_SECONDS`; an environment whose
inputs did not change since a pass that changed nothing in it is skipped, and inside a planned one a service whose
marks (server/views/environment_state.py) and hosts did not change since a pass that planned nothing for it
(`EnvironmentPlan.quiet`), each yet planned again every `FULL_PASS_SECONDS`. A host's desired set is sent when it
differs from what that agent last received, and always on (re)connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from corral.model import deltas, ids, protocol
from corral.model.entities import Host, ObservedContainer
from corral.model.errors import Unavailable
from corral.model.registries import credentials_needed
from corral.model.stack import LaunchConfig, LeftoverRecord, Service, ServiceSpec, SlotRecord
from corral.orchestrator.environment_plan import EnvironmentPlan, environment_leftovers, plan_environment
from corral.orchestrator.health import Replacement
from corral.orchestrator.host_ports import DEFAULT_RANGE, PortRange
from corral.orchestrator.pass_inputs import SlotViews, environment_inputs, host_view
from corral.orchestrator.upgrade_steps import launch_for, previous_spec
from corral.server.control.cert_delivery import certificates_by_host
from corral.server.control.network_pass import NetworkPass
from corral.server.control.occupancy_pass import Revisions, acked_by
from corral.server.control.port_pass import PortPass
from corral.server.control.secret_delivery import secrets_by_host
from corral.server.hub.hub import AgentHub
from corral.server.security.service_accounts import ServiceAccounts
from corral.server.shared.events import EventBus
from corral.server.views.environment_state import EnvironmentState, reported_for_slots
from corral.state.reads import StateReads
from corral.state.snapshot import ClusterSnapshot
from corral.store.certificates import CertificateStore
from corral.store.changes import write_version
from corral.store.registries import RegistryStore
from corral.store.repository import Store
from corral.store.secrets import SecretStore
from corral.store.stacks import StackStore

log = logging.getLogger("corral.orchestration")

RESYNC_SECONDS = 2.0
MAX_KEPT_DESIRED = 2_000_000  # desired entries kept between pushes (beyond: made again)
OBSERVED_PASS_SECONDS = 1.0  # passes for agents' reports start at least this far apart
OUTAGE_BACKOFF_CAP_SECONDS = 10.0  # the longest wait between passes while the database is unavailable
# An environment whose inputs did not change since a pass that changed nothing is skipped (its plan would be the
# same), but planned again at least this often all the same (level-triggered: nothing is trusted for long).
FULL_PASS_SECONDS = 30.0
# A pass starts at least this many times as long as the last one took after it ended: a server busy with a large
# environment batches the changes of a burst (twenty clients scaling) into fewer passes, and passes take at most a
# third of its time; a small one still passes at once (its passes take milliseconds).
PASS_SPACING = 2.0
MAX_PASS_SPACING_SECONDS = 1.0  # (a pass that waited on a slow agent does not hold the next one back for long)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    hosts: list[Host]
    services: list[Service]
    slots: list[SlotRecord]
    observed: dict[str, ObservedContainer]  # slot id -> the container reported for it (on the slot's host)
    by_host: Mapping[str, Mapping[str, ObservedContainer]]  # host id -> slot id -> the container reported there
    leftovers: list[LeftoverRecord]  # removed slots whose containers may still run (orchestrator/occupancy.py)
    # service id -> its mark (server/views/environment_state.py): a new one whenever its row, slots, their reports
    # or the hosts under them change
    marks: Mapping[str, int] = dataclasses.field(default_factory=dict)


class Orchestrator:
    def __init__(
        self,
        store: Store,
        stacks: StackStore,
        hub: AgentHub,
        bus: EventBus,
        host_ports: PortRange | None = None,
        *,
        reads: StateReads,
        registries: RegistryStore | None = None,
        service_accounts: ServiceAccounts | None = None,
        secrets: SecretStore | None = None,
        certificates: CertificateStore | None = None,
    ) -> None:
        self.store = store
        self.stacks = stacks
        self.reads = reads  # every pass reads the in-memory state; writes go through the store
        self.hub = hub
        self.bus = bus
        self._wake = asyncio.Event()
        self._sent: dict[str, str] = {}  # host id -> digest of the desired set last sent
        self._held: dict[str, deltas.Held] = {}  # host id -> the set a delta-taking agent was last sent
        self._versions = itertools.count(1)
        # service id -> index -> health replacements in a row (the backoff of orchestrator/health.py); in memory:
        # a restarted server starts the backoff afresh, which is still bounded
        self._health_history: dict[str, dict[int, Replacement]] = {}
        # environment id -> (its inputs, when it was last planned) after a pass that changed nothing in it
        self._quiet: dict[str, tuple[tuple[Any, ...], float]] = {}
        # service id -> (its marks and its unit's and dependencies', its environment's hosts generation, when it was
        # planned) after a pass that planned nothing for it (`EnvironmentPlan.quiet`): left out until one changes
        self._quiet_services: dict[str, tuple[tuple[int, ...], int, float]] = {}
        # environment id -> (what the planner sees of its hosts, a number that grows whenever that changes)
        self._hosts_seen: dict[str, tuple[tuple[Any, ...], int]] = {}
        self._generations = itertools.count(1)
        # (store write version, when its oldest quiet environment was planned) after a pass that planned nothing
        self._idle_at: tuple[int, float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_pass = 0.0  # monotonic start of the latest pass
        self._pass_ended = 0.0  # and its end
        self._pass_took = 0.0  # how long it took
        self._observed_wake: asyncio.TimerHandle | None = None  # a pass due for agents' reports
        self.network = NetworkPass(store, stacks, hub, reads)  # overlay IPAM and the `network` message
        self.ports = PortPass(stacks, reads, host_ports or PortRange.parse(DEFAULT_RANGE))  # random host ports
        self.registries = registries  # private registry credentials, sent with `desired`
        self.service_accounts = service_accounts  # containers' own credentials, sent with `desired`
        self.secrets = secrets  # secret values, sent with `desired` (server/control/secret_delivery.py)
        self.certificates = certificates  # LBs' certificates, with `desired` (server/control/cert_delivery.py)
        self.revisions = Revisions()  # desired sets sent and acknowledged (one container per index)
        self._push_lock = asyncio.Lock()
        self._slot_views = SlotViews()  # the planner's views of slots, kept while they do not change
        # slot id -> (the record, launch config and spec its desired entry was made of, the entry): a push makes the
        # entries of the slots that changed (the entries are never changed once made; `deltas` compares them)
        self._desired_made: dict[str, tuple[SlotRecord, LaunchConfig, ServiceSpec, dict[str, Any]]] = {}
        # host id -> the entries last sent (compared by identity) and the digest of the credentials sent with them
        self._sent_entries: dict[str, tuple[list[dict[str, Any]], str]] = {}

    def trigger(self) -> None:
        self._wake.set()

    def trigger_observed(self) -> None:
        """Agents reported a change (a container event, a host's state): a pass, but at most one every
        OBSERVED_PASS_SECONDS, so that a burst of events while containers start is one pass, not one each (each pass
        reads the whole snapshot; bench P6). A user's change (`trigger`) still starts a pass at once."""
        if self._observed_wake is not None:
            return  # one is due already; it will see this change too
        delay = max(0.0, self._last_pass + OBSERVED_PASS_SECONDS - time.monotonic())
        self._observed_wake = asyncio.get_running_loop().call_later(delay, self._wake_observed)

    def _wake_observed(self) -> None:
        self._observed_wake = None
        self._wake.set()

    async def start(self) -> None:
        self.hub.connect_listeners.append(self._on_agent_connected)
        self.hub.ack_listeners.append(self._on_ack)
        self.hub.change_listeners.append(self.trigger_observed)
        self._task = asyncio.create_task(self._loop(), name="orchestrator")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        outage = 0  # passes in a row the database refused: the next one waits longer (capped), whatever wakes it
        while not self._stopping:
            if outage:
                await asyncio.sleep(min(RESYNC_SECONDS * 2**outage, OUTAGE_BACKOFF_CAP_SECONDS))
            # (not `wait_for`: in Python 3.11 it may swallow the cancel of `stop`, and the loop would run on)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESYNC_SECONDS):
                    await self._wake.wait()
            spacing = min(PASS_SPACING * self._pass_took, MAX_PASS_SPACING_SECONDS)
            rest = self._pass_ended + spacing - time.monotonic()
            if rest > 0:  # a long pass: the requests, reports and agents get the time between two passes
                await asyncio.sleep(rest)
            if self._stopping:
                return
            self._wake.clear()  # what woke it while it waited is seen by this pass
            self._last_pass = time.monotonic()
            try:
                await self.run_once()
            except Unavailable as exc:  # an outage, not a bug: retried with backoff, logged once
                if not outage:
                    log.warning("orchestrator pass postponed: %s", exc.message)
                outage = min(outage + 1, 8)
                continue
            except Exception:  # the loop must survive any one bad pass; the next pass starts from scratch
                log.exception("orchestrator pass failed")
            finally:
                self._pass_ended = time.monotonic()
                self._pass_took = self._pass_ended - self._last_pass
            if outage:
                log.info("orchestrator passes resume: the database answers again")
            outage = 0

    async def run_once(self) -> None:
        changed = await run_in_threadpool(self._decide_and_store)
        for service in changed:
            self.bus.publish("service", "updated", {"id": service.id, "name": service.name}, service.environment_id)
        await self.network.push()
        await self._push_desired()

    # -- decide ---------------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """What the next pass plans from (server/routes/api_plan.py previews an `up` over it)."""
        return self._snapshot()

    def _snapshot(self) -> Snapshot:
        """One consistent view from the in-memory state (corral/state): no query. Its slots joined to their reports
        are the views' (`EnvironmentState`, made from the last pass's with what changed since); the reports by host
        are read for the hosts the pass asks about (those of old containers that may still run)."""
        built = EnvironmentState.current(self.stacks, self.reads.state, None)
        state, snapshot = built.state, built.snapshot
        hosts = list(state.hosts.values())
        return Snapshot(
            hosts,
            state.services,
            state.slots,
            state.observed,
            _ReportsByHost(snapshot),
            snapshot.leftovers(),
            state.marks or {},
        )

    def _decide_and_store(self) -> list[Service]:
        """Observe (one snapshot) -> decide (`plan_environment`, pure, per environment) -> store each environment's
        plan in one transaction; then the address and port passes over what is stored."""
        version = write_version()
        idle = self._idle_at
        if idle is not None and idle[0] == version and time.monotonic() - idle[1] <= FULL_PASS_SECONDS:
            return []  # nothing was written since a pass in which every environment was quiet: same inputs
        self._idle_at = None
        self.reads.state.resync_if_due(FULL_PASS_SECONDS)
        snapshot = self._snapshot()
        now = time.time()
        changed: list[Service] = []
        retained: dict[str, str] = {}  # new slot id -> the address of the slot it replaces (retain_ip)
        services_by_env: dict[str, list[Service]] = defaultdict(list)
        for service in snapshot.services:
            services_by_env[service.environment_id].append(service)
        slots_by_env: dict[str, list[SlotRecord]] = defaultdict(list)
        for record in snapshot.slots:
            slots_by_env[record.slot.environment_id].append(record)
        converged = dict(self.hub.converged)
        acked = acked_by(self.revisions, converged)
        for environment_id, services in services_by_env.items():
            hosts = [host_view(h) for h in snapshot.hosts if h.environment_id == environment_id]
            image_reports = [h.images for h in snapshot.hosts if h.environment_id == environment_id]
            env_slots = slots_by_env[environment_id]
            stored = [item for item in snapshot.leftovers if item.environment_id == environment_id]
            leftovers = environment_leftovers(stored, env_slots, snapshot.by_host, acked)
            inputs = environment_inputs(hosts, image_reports, services, env_slots, snapshot.observed)
            # an old container that may still run is released by acknowledgements the store never sees: plan again
            if not leftovers and self._unchanged(environment_id, inputs, services):
                continue
            generation = self._hosts_generation(environment_id, (hosts, image_reports))
            keys = _quiet_keys(services, snapshot.marks)
            unchanged = self._unchanged_services(keys, generation)
            plan = plan_environment(
                environment_id,
                hosts=hosts,
                image_reports=image_reports,
                services=services,
                slots=env_slots,
                observed=snapshot.observed,
                by_host=snapshot.by_host,
                stored_leftovers=stored,
                leftovers=leftovers,
                acked=acked,
                health_history=self._health_history,
                now=now,
                new_id=lambda: ids.new_id("c"),
                view_slot=self._slot_views,
                unchanged=unchanged,
            )
            self.stacks.apply_environment_plan(plan)  # one transaction; raises (nothing stored) if it fails
            self._note_quiet_services(services, plan, keys, generation, unchanged)
            self._health_history.update({k: dict(v) for k, v in plan.health_history.items()})
            retained.update(plan.retained)
            _log_plan(plan)
            by_id = {s.id: s for s in services}
            changed.extend(by_id[service_id] for service_id in plan.changed)
            if not plan.changed and not leftovers:
                self._quiet[environment_id] = (inputs, time.monotonic())
            else:
                self._quiet.pop(environment_id, None)
        self.revisions.prune(converged, {r.slot.id for r in snapshot.slots})
        if len(self._quiet_services) > 2 * len(snapshot.services):  # records of removed services
            present = {s.id for s in snapshot.services}
            self._quiet_services = {k: v for k, v in self._quiet_services.items() if k in present}
        # Nothing stored by this pass: the snapshot is still what the store holds, and the address and port passes
        # reuse it instead of reading services and slots again (bench P6, statements per container start).
        self._note_idle(version, {s.environment_id for s in snapshot.services}, changed, snapshot.services)
        services, slots = self._after_pass(snapshot, {s.environment_id for s in changed})
        self.network.assign(retained, hosts=snapshot.hosts, services=services, slots=slots)
        self.ports.assign(slots, services)
        return changed

    def _hosts_generation(self, environment_id: str, seen: tuple[Any, ...]) -> int:
        last = self._hosts_seen.get(environment_id)
        if last is not None and last[0] == seen:
            return last[1]
        generation = next(self._generations)
        self._hosts_seen[environment_id] = (seen, generation)
        return generation

    def _unchanged_services(self, keys: Mapping[str, tuple[int, ...]], generation: int) -> frozenset[str]:
        """The services whose marks (and their unit's and dependencies') and hosts are as at a pass that planned
        nothing for them, at most FULL_PASS_SECONDS ago (level-triggered: each is planned in full that often)."""
        due = time.monotonic() - FULL_PASS_SECONDS
        quiet = self._quiet_services
        return frozenset(
            service_id
            for service_id, key in keys.items()
            if (last := quiet.get(service_id)) is not None
            and last[0] == key
            and last[1] == generation
            and last[2] > due
        )

    def _note_quiet_services(
        self,
        services: list[Service],
        plan: EnvironmentPlan,
        keys: Mapping[str, tuple[int, ...]],
        generation: int,
        unchanged: frozenset[str],
    ) -> None:
        """Services left out keep their record (and its time); those planned are quiet as the plan says."""
        now = time.monotonic()
        quiet = set(plan.quiet)
        for service in services:
            if service.id not in quiet or service.id not in keys:
                self._quiet_services.pop(service.id, None)
            elif service.id not in unchanged or service.id not in self._quiet_services:
                self._quiet_services[service.id] = (keys[service.id], generation, now)

    def _after_pass(self, snapshot: Snapshot, changed: set[str]) -> tuple[list[Service], list[SlotRecord]]:
        """Services and slots as stored after the pass: the snapshot's when it stored nothing, else the views' state
        again (derived from the snapshot's with what the pass wrote, not read whole)."""
        if not changed:
            return snapshot.services, snapshot.slots
        state = EnvironmentState.current(self.stacks, self.reads.state, None).state
        return state.services, state.slots

    def _note_idle(self, version: int, environments: set[str], changed: list[Service], services: list[Service]) -> None:
        """After a pass in which every environment was quiet (and none runs a time-driven rule), the next passes
        plan nothing until something is written to the store (or the oldest quiet environment is due)."""
        if changed or any(e not in self._quiet for e in environments) or self._time_driven(services):
            return
        oldest = min((self._quiet[e][1] for e in environments), default=time.monotonic())
        self._idle_at = (version, oldest)

    def _time_driven(self, services: list[Service]) -> bool:
        return any(s.upgrade or s.state != "active" or self._health_history.get(s.id) for s in services)

    def _unchanged(self, environment_id: str, inputs: tuple[Any, ...], services: list[Service]) -> bool:
        """The environment's last pass changed nothing, nothing it plans from changed since, and no time-driven rule
        is running in it (a rolling upgrade's batches, a health replacement's backoff): planning it again would
        change nothing either, so a large idle environment costs a pass little (issue 14: one stack starved the
        server). Still planned every FULL_PASS_SECONDS."""
        quiet = self._quiet.get(environment_id)
        if quiet is None or quiet[0] != inputs or time.monotonic() - quiet[1] > FULL_PASS_SECONDS:
            return False
        return not self._time_driven(services)

    # -- act ------------------------------------------------------------------------------------------------------

    def desired_by_host(self, host_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        """The desired container set of each of these hosts, from one read of services and slots (not one per host:
        a push to hundreds of agents must not re-read every service for each)."""
        if not host_ids:
            return {}
        state = self.reads.snapshot()
        services = {s.id: s for s in state.services()}
        previous = {s.id: previous_spec(s) for s in services.values() if s.upgrade}
        desired: dict[str, list[dict[str, Any]]] = {host_id: [] for host_id in host_ids}
        only = next(iter(host_ids)) if len(host_ids) == 1 else None
        made = self._desired_made
        launch_dicts: dict[int, tuple[LaunchConfig, dict[str, Any]]] = {}  # one per launch config, shared by its
        # slots' entries (entries are never changed once made; service_accounts.py copies what it adds to)
        for record in state.slots(host_id=only):
            into = desired.get(record.slot.host_id)
            service = services.get(record.service_id)
            if into is None or service is None:
                continue
            launch = launch_for(service, record.slot, previous.get(service.id))
            entry = made.get(record.slot.id)
            if entry is None or entry[0] is not record or entry[1] is not launch or entry[2] is not service.spec:
                check = service.spec.health()
                shared = launch_dicts.get(id(launch))
                if shared is None or shared[0] is not launch:
                    shared = launch_dicts[id(launch)] = (launch, launch.to_dict())
                data = _desired_dict(record, shared[1], check.to_dict() if check is not None else None)
                entry = made[record.slot.id] = (record, launch, service.spec, data)
            into.append(entry[3])
        if len(made) > MAX_KEPT_DESIRED:
            made.clear()
        if self.service_accounts is not None:
            self.service_accounts.inject(desired)
        return desired

    async def _push_desired(self, *, force_host: str | None = None) -> None:
        # one push at a time: a set read earlier never reaches an agent after one read later (revisions in order)
        async with self._push_lock:
            await self._push_desired_now(force_host)

    async def _push_desired_now(self, force_host: str | None) -> None:
        host_ids = {h for h in self.hub.sessions if force_host is None or h == force_host}
        revision = self.revisions.next()  # before reading: the set holds every change stored before this
        desired = await run_in_threadpool(self.desired_by_host, host_ids)
        registries = await run_in_threadpool(self.registries_by_host, desired)
        secrets = await run_in_threadpool(secrets_by_host, self.store, self.secrets, desired)
        certificates = await run_in_threadpool(
            certificates_by_host, self.certificates, self.reads.snapshot().services(), desired
        )
        for host_id in host_ids:
            extra = [registries.get(host_id, []), secrets.get(host_id, {}), certificates.get(host_id, {})]
            extra_digest = json.dumps(extra, sort_keys=True)
            listed = desired[host_id]
            if force_host is None and self._sent_same(host_id, listed, extra_digest):
                continue  # the very entries sent last (made once per change of a slot) and the same credentials
            digest = json.dumps([listed, *extra], sort_keys=True)
            if force_host is None and self._sent.get(host_id) == digest:
                self._sent_entries[host_id] = (listed, extra_digest)
                continue
            session = self.hub.sessions.get(host_id)
            held = self._held.pop(host_id, None) if session is not None and session.deltas else None
            extras = deltas.Extras(registries.get(host_id, []), secrets.get(host_id, {}), certificates.get(host_id, {}))
            data = deltas.desired_message(desired[host_id], revision, extras, held, next(self._versions))
            sent = await self.hub.send(host_id, protocol.Message(protocol.DESIRED, data))
            if sent:
                self._sent[host_id] = digest
                self._sent_entries[host_id] = (listed, extra_digest)
                self.revisions.sent(host_id, revision, desired[host_id])
                if session is not None and session.deltas:
                    entries = deltas.by_slot(desired[host_id])
                    self._held[host_id] = deltas.Held(data["version"], entries, extras.digest())

    def _sent_same(self, host_id: str, listed: list[dict[str, Any]], extra_digest: str) -> bool:
        last = self._sent_entries.get(host_id)
        if last is None or last[1] != extra_digest or len(last[0]) != len(listed):
            return False
        return all(a is b for a, b in zip(last[0], listed, strict=True))

    async def _on_ack(self, host_id: str, data: dict[str, Any]) -> None:
        """An agent holds another desired set than the one we follow (a gap): send it the full set again."""
        if "network" in data:  # about its network state (model/network_deltas.py)
            await self.network.on_ack(host_id, data)
        elif data.get("resync") is True:
            log.info("agent %s asked for its full desired set (version %s)", host_id, data.get("desired"))
            self._held.pop(host_id, None)
            await self._push_desired(force_host=host_id)

    def registries_by_host(self, desired: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, str]]]:
        """The registry credentials each host receives with its desired set: only those of registries its own
        desired containers pull from (model/registries.py `credentials_needed`); each environment's read once."""
        if self.registries is None or not desired:
            return {}
        environments = {h.id: h.environment_id for h in self.reads.hosts_by_id(desired).values()}
        credentials = {
            environment_id: self.registries.credentials(environment_id) for environment_id in set(environments.values())
        }
        return {
            host_id: [
                credential.to_wire()
                for credential in credentials_needed(
                    (str(entry["launch"].get("image", "")) for entry in desired[host_id]), credentials[environment_id]
                )
            ]
            for host_id, environment_id in environments.items()
        }

    async def _on_agent_connected(self, host_id: str) -> None:
        self._sent.pop(host_id, None)
        self._sent_entries.pop(host_id, None)
        self._held.pop(host_id, None)  # a new connection starts from the full set
        await self.network.push(force_host=host_id)
        await self._push_desired(force_host=host_id)
        self.trigger()


def _quiet_keys(services: list[Service], marks: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Service id -> the marks a plan of it reads: its own, its sidekick unit's and the services it depends on
    (their containers decide whether it waits); services without a mark are left out (planned every pass)."""
    by_name = {(s.stack_id, s.name): s for s in services}
    units: dict[tuple[str, str], list[str]] = {}
    for service in services:
        primary = service.spec.sidekick_of or service.name
        units.setdefault((service.stack_id, primary), []).append(service.id)
    keys: dict[str, tuple[int, ...]] = {}
    for service in services:
        related = [*units.get((service.stack_id, service.spec.sidekick_of or service.name), [])]
        related += [d.id for name in service.spec.depends_on if (d := by_name.get((service.stack_id, name)))]
        found = [marks.get(service_id) for service_id in [service.id, *related]]
        if all(mark is not None for mark in found):
            keys[service.id] = tuple(mark for mark in found if mark is not None)
    return keys


class _ReportsByHost(Mapping[str, Mapping[str, ObservedContainer]]):
    """Host id -> slot id -> the container reported for the slot there, made for a host when asked for."""

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self._snapshot = snapshot
        self._made: dict[str, dict[str, ObservedContainer]] = {}

    def __getitem__(self, host_id: str) -> Mapping[str, ObservedContainer]:
        made = self._made.get(host_id)
        if made is None:
            reported = reported_for_slots(self._snapshot.containers(host_id))
            made = self._made[host_id] = {slot_id: container for (_, slot_id), container in reported.items()}
        if not made:
            raise KeyError(host_id)
        return made

    def __iter__(self) -> Iterator[str]:
        return (host_id for host_id in self._hosts() if host_id in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _hosts(self) -> Iterable[str]:
        return [str(key) for key in self._snapshot.tables["containers"].indexes["host_id"]]


def _log_plan(plan: EnvironmentPlan) -> None:
    for warning in plan.warnings:
        log.warning("%s", warning)
    for part in plan.services:
        if not part.plan.empty:
            service, changes = part.service, part.plan
            log.info(
                "%s/%s: place %d, replace %d, update %d, remove %d",
                service.stack,
                service.name,
                len(changes.place),
                len(changes.replace),
                len(changes.update),
                len(changes.remove),
            )


def _desired_dict(record: SlotRecord, launch: dict[str, Any], health_check: dict[str, Any] | None) -> dict[str, Any]:
    """`DesiredContainer(...).to_dict()` with the service's launch and health check dicts made once per pass."""
    data: dict[str, Any] = {
        "slot": dataclasses.asdict(record.slot),
        "launch": launch,
        "running": record.running,
        "start_requested_at": record.start_requested_at,
    }
    if health_check is not None:
        data["health_check"] = health_check
    if record.ip:
        data["ip"] = record.ip
    if record.host_ports:
        data["host_ports"] = [list(p) for p in record.host_ports]
    return data
