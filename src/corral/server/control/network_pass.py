"""The server side of the managed overlay: IPAM writes (host slices, slot addresses) and the `network` message.

Why a module of its own: the orchestrator loop (server/control/orchestration.py) calls two hooks — `assign` after its
pass (with the addresses the environment plans retained: orchestrator/pass_inputs.py `carried_addresses`), `push` when
it talks to agents — and everything about networks lives here. The decisions are the pure `orchestrator/ipam.py`; this
module only reads the in-memory state, writes what changed to the store and builds each host's `NetworkState`
(model/network.py), sent like `desired`: in full on connect, then, to an agent that takes deltas, only what changed
against the version it holds (model/network_deltas.py); to others, in full whenever its digest changes. An agent
that takes scoped states gets only the part of its environment it needs (model/network_scope.py, `_Scoping`) plus
what it asked for (`on_ack` with a `demand`), so a container's change reaches the hosts that use it, not all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
import itertools
import json
import logging
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any

from starlette.concurrency import run_in_threadpool

from corral.model import network_deltas, network_scope, protocol
from corral.model.entities import Environment, Host, HostState, ObservedContainer
from corral.model.network import (
    ContainerRecord,
    HostNetwork,
    NetworkSettings,
    NetworkState,
    ServiceRecord,
    transit_address,
)
from corral.model.stack import LaunchConfig, Service, SlotRecord
from corral.orchestrator.ipam import (
    MANAGED,
    AddressRequest,
    HostSlice,
    assign_addresses,
    assign_slices,
    requested_addresses,
)
from corral.orchestrator.upgrade_steps import launch_for, previous_spec
from corral.server.hub.hub import AgentHub, AgentSession
from corral.server.views.environment_state import EnvironmentState
from corral.state.reads import StateReads
from corral.store.repository import Store
from corral.store.stacks import StackStore

log = logging.getLogger("corral.network")
MAX_KEPT_REQUESTS = 2_000_000  # address requests kept between passes (beyond: made again)
# a container's overlay record as a pass made it: its slot, service, report and upgrade's old spec, the record, its dict
_MadeRecord = tuple[SlotRecord, Service, ObservedContainer | None, Any, ContainerRecord, dict[str, Any]]


class NetworkPass:
    def __init__(self, store: Store, stacks: StackStore, hub: AgentHub, reads: StateReads) -> None:
        self.store = store
        self.stacks = stacks
        self.reads = reads  # what it plans from: the in-memory state; what it decides is written to the store
        self.hub = hub
        self._sent: dict[str, str] = {}  # host id -> digest of the network state last sent
        self._held: dict[str, network_deltas.Held] = {}  # host id -> the state a delta-taking agent was last sent
        self._versions = itertools.count(1)
        self._push_lock = asyncio.Lock()
        self._reasons: dict[str, str] = {}  # host or slot id -> the IPAM's last reason (logged when it changes)
        # slot id -> (the slot, service, report and upgrade's old spec its record was made of; the record; its dict):
        # the in-memory state's snapshots share what did not change, so a pass remakes only the records that did,
        # and their dicts stay the same objects (the deltas' diff passes over those without comparing them)
        self._records: dict[str, _MadeRecord] = {}
        # slot id -> (the record and launch config its address request was made of, the request)
        self._requests: dict[str, tuple[SlotRecord, LaunchConfig | None, AddressRequest]] = {}
        # environment id -> (its network settings and slices, the address requests of its last assignment, its
        # reasons by slot): the same requests (the same objects) over the same slices give the addresses stored then
        self._assigned: dict[str, tuple[tuple[Any, dict[str, str]], list[AddressRequest], dict[str, str]]] = {}

    # -- IPAM -------------------------------------------------------------------------------------------------------

    def assign(
        self,
        retained: Mapping[str, str],
        *,
        hosts: Iterable[Host] | None = None,
        services: Iterable[Service] | None = None,
        slots: Iterable[SlotRecord] | None = None,
    ) -> None:
        """Give every host of every environment its slice and every managed slot its address; store what changed.
        `retained` maps new slot ids to the addresses of the slots they replaced (`carried_addresses`). `hosts`,
        `services` and `slots`, when given, are what the store holds now (the orchestrator pass read them)."""
        hosts_by_env: dict[str, list[Host]] = defaultdict(list)
        for host in hosts if hosts is not None else self.reads.list_hosts(container_counts=False):
            if host.state is not HostState.PENDING:  # not admitted yet: no slice
                hosts_by_env[host.environment_id].append(host)
        by_id = {s.id: s for s in (services if services is not None else self.reads.list_services())}
        previous = {s.id: previous_spec(s) for s in by_id.values() if s.upgrade}
        slots_by_env: dict[str, list[SlotRecord]] = defaultdict(list)
        for record in slots if slots is not None else self.reads.list_slots():
            slots_by_env[record.slot.environment_id].append(record)
        reasons: dict[str, str] = {}
        for env in self.reads.list_environments():
            hosts = sorted(hosts_by_env.get(env.id, []), key=lambda h: (h.created_at, h.id))
            slices = assign_slices(env.network, [HostSlice(h.id, h.overlay_slice) for h in hosts])
            for host in hosts:
                if slices.slices[host.id] != host.overlay_slice:
                    self.store.update_host(host.id, overlay_slice=slices.slices[host.id], counted=False)
                    log.info("host %s: overlay slice %r", host.name, slices.slices[host.id])
            reasons.update(slices.reasons)
            records = _oldest_first(slots_by_env.get(env.id, []))
            requests = []
            for record in records:
                service = by_id.get(record.service_id)
                launch = launch_for(service, record.slot, previous.get(service.id)) if service else None
                requests.append(self._request(record, launch, retained.get(record.slot.id, "")))
            last = self._assigned.get(env.id)
            if last is not None and last[0] == (env.network, slices.slices) and _same_objects(last[1], requests):
                reasons.update(last[2])
                continue
            addresses = assign_addresses(env.network, slices.slices, requests)
            self.stacks.set_slot_ips({r.slot.id: a for r in records if (a := addresses.addresses[r.slot.id]) != r.ip})
            unaddressed = {
                f"{r.slot.name} ({r.slot.id})": addresses.reasons[r.slot.id]
                for r in records
                if r.slot.id in addresses.reasons
            }
            reasons.update(unaddressed)
            self._assigned[env.id] = ((env.network, slices.slices), requests, unaddressed)
        for what, why in reasons.items():
            if self._reasons.get(what) != why:
                log.warning("overlay: %s has no address: %s", what, why)
        self._reasons = reasons

    def _request(self, record: SlotRecord, launch: LaunchConfig | None, retained: str) -> AddressRequest:
        """The slot's address request, made again only when its record, launch config or retained address is
        another than at the last pass (the in-memory state's snapshots share what did not change)."""
        made = self._requests.get(record.slot.id)
        if made is not None and made[0] is record and made[1] is launch and made[2].retained == retained:
            return made[2]
        request = AddressRequest(
            slot_id=record.slot.id,
            host_id=record.slot.host_id,
            managed=launch.network_mode == MANAGED if launch is not None else bool(record.ip),
            current=record.ip,
            requested=requested_addresses(launch.labels) if launch is not None else (),
            retained=retained,
        )
        if len(self._requests) >= MAX_KEPT_REQUESTS:
            self._requests.clear()
        self._requests[record.slot.id] = (record, launch, request)
        return request

    # -- the `network` message --------------------------------------------------------------------------------------

    def states_for(self, host_ids: Iterable[str]) -> dict[str, NetworkState]:
        """Each host's network state (hosts that are gone, or pending approval, are left out: a pending host gets no
        state and is nobody's peer)."""
        states: dict[str, NetworkState] = {}
        for env, shared, wanted in self._environments(host_ids):
            for host_id in wanted:
                states[host_id] = NetworkState(
                    environment_id=env.id,
                    environment=env.name,
                    settings=env.network,
                    host=shared.nets[host_id],
                    peers=tuple(p for p in shared.peers if p.host_id != host_id),
                    containers=shared.containers,
                    services=shared.services,
                    hosts=shared.hosts,
                )
        return states

    def _environments(self, host_ids: Iterable[str]) -> list[tuple[Environment, _Shared, list[str]]]:
        """Per environment of the wanted hosts: what all its hosts share, built once, and the wanted hosts in it."""
        wanted = set(host_ids)
        hosts = [h for h in self.reads.list_hosts(container_counts=False) if h.id in wanted]
        found = []
        for environment_id in {h.environment_id for h in hosts}:
            env = self.reads.get_environment(environment_id)
            env_hosts = [
                h
                for h in self.reads.list_hosts(environment_id, container_counts=False)
                if h.state is not HostState.PENDING
            ]
            nets = {h.id: _host_network(h, env.network) for h in sorted(env_hosts, key=lambda h: h.id)}
            containers, services, records = self._environment_parts(env, env_hosts)
            shared = _Shared(
                nets=nets,
                peers=tuple(n for n in nets.values() if n.slice and n.address),
                containers=containers,
                services=services,
                hosts=records,
                foreign=_foreign(containers, nets) if env.network.encryption else (),
            )
            found.append((env, shared, [h.id for h in env_hosts if h.id in wanted]))
        kept = {c.slot_id for _, shared, _ in found for c in shared.containers}
        if len(self._records) > 2 * len(kept) + 1000:  # removed slots' records (or another environment's: remade)
            self._records = {slot_id: made for slot_id, made in self._records.items() if slot_id in kept}
        return found

    def _environment_parts(
        self, env: Environment, hosts: list[Host], state: EnvironmentState | None = None
    ) -> tuple[tuple[ContainerRecord, ...], tuple[ServiceRecord, ...], tuple[dict[str, Any], ...]]:
        """From `state`, by default the views' state of the environment: its slots in the order of a full state,
        joined to their reports, made from the last one with what changed since (not from every slot again)."""
        if state is None:
            state = EnvironmentState.current(self.stacks, self.reads.state, env.id).state
        services = state.services_by_id
        previous = {s.id: previous_spec(s) for s in services.values() if s.upgrade}
        observed = state.observed
        containers = []
        records = self._records
        for record in state.slots:
            service = services.get(record.service_id)
            if service is None:
                continue
            seen = observed.get(record.slot.id)
            old_spec = previous.get(service.id)
            made = records.get(record.slot.id)
            if (
                made is not None
                and made[0] is record
                and made[1] is service
                and made[2] is seen
                and made[3] is old_spec
            ):
                containers.append(made[4])
                continue
            container = _container_record(record, service, seen, old_spec)
            records[record.slot.id] = (record, service, seen, old_spec, container, container.to_dict())
            containers.append(container)
        return (
            # in the order of a full state (model/network_deltas.py), which an agent's deltas rebuild: `slot_order`
            tuple(containers),
            tuple(sorted((_service_record(s) for s in services.values()), key=lambda s: (s.stack, s.name))),
            tuple(_host_record(h) for h in sorted(hosts, key=lambda h: h.id)),
        )

    async def push(self, *, force_host: str | None = None, only_host: str | None = None) -> None:
        """Send each connected agent (or only `only_host`) its network state when it changed (or, for `force_host`,
        always, in full): a delta-taking agent gets what changed since the version it was last sent
        (model/network_deltas.py)."""
        async with self._push_lock:  # one at a time: each delta's base is the version the push before sent
            one = force_host or only_host
            host_ids = [h for h in self.hub.sessions if one is None or h == one]
            if not host_ids:
                return
            if force_host is not None:
                self._held.pop(force_host, None)
            outgoing = await run_in_threadpool(self.encoded_states, host_ids, force_host)
            for host_id, (digest, text, held) in outgoing.items():
                if held is None and force_host is None and self._sent.get(host_id) == digest:
                    continue  # an agent that takes full states only: this one it has
                if await self.hub.send_encoded(host_id, text):
                    self._sent[host_id] = digest
                    if held is None:
                        self._held.pop(host_id, None)
                    else:
                        self._held[host_id] = held
                else:
                    self._held.pop(host_id, None)  # unknown what it holds now: its reconnect starts from full

    async def on_ack(self, host_id: str, data: dict[str, Any]) -> None:
        """An agent holds another network state than the one we follow (a gap, or a delta it could not read): send
        it the full state again."""
        if "demand" in data:  # it needs more of its environment than its scope (model/network_scope.py)
            session = self.hub.sessions.get(host_id)
            try:
                demand = network_scope.demand_from_wire(data["demand"])
            except ValueError as exc:
                log.warning("agent %s: %s", host_id, exc)
                return
            held = session.network_demand if session is not None else network_scope.ALL
            if session is not None and not isinstance(held, str):  # "all" already: nothing more to give
                session.network_demand = demand if isinstance(demand, str) else held | demand
                log.info("agent %s asked for %s", host_id, network_scope.demand_to_wire(demand))
                await self.push(only_host=host_id)
        if data.get("resync") is True:
            log.info("agent %s asked for its full network state (version %s)", host_id, data.get("network"))
            await self.push(force_host=host_id)

    def encoded_states(
        self, host_ids: Iterable[str], force_host: str | None = None
    ) -> dict[str, tuple[str, str, network_deltas.Held | None]]:
        """Host id -> (digest, encoded `network` message, what a delta-taking agent holds once it is sent), off the
        event loop: a delta for an agent that holds a version (none when nothing changed for it), else the full
        state. What the hosts of an environment share (containers, services, hosts: the bulk; every host's peer
        entry) is rendered, keyed, diffed and encoded once per environment; each host adds only its own part, so a
        pass is linear in the environment's size, except the bytes of full states (each lists all its peers)."""
        encoded: dict[str, tuple[str, str, network_deltas.Held | None]] = {}
        memo: network_deltas.Memo = {}
        lists_json = _ListEncoder()
        for env, shared, wanted in self._environments(host_ids):
            whole = not all(_scoped(self.hub.sessions.get(h)) for h in wanted)  # someone gets the whole environment
            lists = {
                "containers": [self._container_dict(c) for c in shared.containers] if whole else [],
                "services": [s.to_dict() for s in shared.services] if whole else [],
                "hosts": [dict(h) for h in shared.hosts],
            }
            sections = network_deltas.Parts.of({"environment_id": env.id, "host": {}, **lists}).sections
            peers = {p.host_id: p.to_dict() for p in shared.peers}  # sorted by host id, as a full state lists them
            peers_json: dict[str, str] = {}  # made, like shared_json, only for full states
            settings = env.network.to_dict()
            own_head = f'{{"environment": {json.dumps(env.name)}, "environment_id": {json.dumps(env.id)}, "host": '
            own_tail = f', "settings": {json.dumps(settings, sort_keys=True)}}}'
            shared_json = ""  # made only when some host of the environment gets a full state
            scoping: _Scoping | None = None
            for host_id in wanted:
                session = self.hub.sessions.get(host_id)
                takes_deltas = session is not None and session.network_deltas
                host = shared.nets[host_id].to_dict()
                fixed = {"environment_id": env.id, "environment": env.name, "settings": settings, "host": host}
                parts = network_deltas.Parts(fixed, {**sections, "peers": network_deltas.Excluding(peers, host_id)})
                held = self._held.get(host_id) if takes_deltas and host_id != force_host else None
                if session is not None and takes_deltas and session.network_scope:
                    demand = session.network_demand
                    if _scoped(session) and not isinstance(demand, str):
                        scoping = scoping or _Scoping(shared, self._container_dict)
                        containers, services = scoping.sections(host_id, demand)
                        parts = network_deltas.Parts(
                            {**fixed, "scoped": True},
                            {
                                **parts.sections,
                                "containers": containers,
                                "services": services,
                                "directory": scoping.directory,
                            },
                        )
                    if held is None:
                        version = next(self._versions)
                        full = {**network_deltas.full_state(parts), "version": version}
                        text = _envelope(json.dumps(full, sort_keys=True))
                        encoded[host_id] = ("", text, network_deltas.Held(version, parts))
                        continue
                if held is not None:
                    delta = network_deltas.network_delta(held.parts, parts, memo)
                    if delta is None:
                        continue
                    version = next(self._versions)
                    text = _delta_message(delta, held.version, version, lists_json)
                    encoded[host_id] = ("", text, network_deltas.Held(version, parts))
                    continue
                if not shared_json:
                    shared_json = json.dumps(lists, sort_keys=True)
                    peers_json = {peer: json.dumps(entry, sort_keys=True) for peer, entry in peers.items()}
                own_json = (
                    own_head
                    + json.dumps(host, sort_keys=True)
                    + ', "peers": ['
                    + ", ".join(text for peer, text in peers_json.items() if peer != host_id)
                    + "]"
                    + own_tail
                )
                data = own_json[:-1] + ", " + shared_json[1:]  # objects with distinct keys
                digest = hashlib.sha256(data.encode()).hexdigest()
                held_now = None
                if takes_deltas:
                    held_now = network_deltas.Held(next(self._versions), parts)
                    data = data[:-1] + f', "version": {held_now.version}}}'
                encoded[host_id] = (digest, _envelope(data), held_now)
        return encoded

    def _container_dict(self, container: ContainerRecord) -> dict[str, Any]:
        made = self._records.get(container.slot_id)
        return made[5] if made is not None and made[4] is container else container.to_dict()

    def forget(self, host_id: str) -> None:
        self._sent.pop(host_id, None)
        self._held.pop(host_id, None)


def _same_objects(before: list[AddressRequest], now: list[AddressRequest]) -> bool:
    return len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True))


@dataclasses.dataclass(frozen=True)
class _Shared:
    """What every host's state of one environment is made of, built once per pass: each host's overlay entry (by
    host id), the peers (hosts with a slice and an address, by host id), the containers, services and hosts, and
    the containers living outside their host's slice (every host of an encrypted overlay routes them)."""

    nets: Mapping[str, HostNetwork]
    peers: tuple[HostNetwork, ...]
    containers: tuple[ContainerRecord, ...]
    services: tuple[ServiceRecord, ...]
    hosts: tuple[dict[str, Any], ...]
    foreign: tuple[ContainerRecord, ...] = ()


class _Scoping:
    """What the scoped states of one environment's hosts share in one push (model/network_scope.py): the service
    index, the containers by service and by host, those on compose networks, each service's full and incomplete
    record as a dict, and the directory section."""

    def __init__(self, shared: _Shared, container_dict: Callable[[ContainerRecord], dict[str, Any]]) -> None:
        self.index = network_scope.ServiceIndex(shared.services)
        self.container_dict = container_dict
        self.by_service: dict[network_scope.Key, list[ContainerRecord]] = defaultdict(list)
        self.by_host: dict[str, list[ContainerRecord]] = defaultdict(list)
        self.segmented: list[ContainerRecord] = []
        for container in shared.containers:
            self.by_service[(container.stack, container.service)].append(container)
            self.by_host[container.host_id].append(container)
            if container.networks:
                self.segmented.append(container)
        self.foreign = shared.foreign
        self.full = {key: record.to_dict() for key, record in self.index.services.items()}
        self.partial = {key: network_scope.incomplete(record).to_dict() for key, record in self.index.services.items()}
        self.directory = {f"{d.stack}/{d.name}": d.to_dict() for d in self.index.directory()}

    def sections(
        self, host_id: str, demand: Iterable[network_scope.Key]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(containers by slot id, services by "stack/name") of the host's scoped state."""
        local = self.by_host.get(host_id, [])
        scope = network_scope.host_scope(local, self.index, demand)
        containers: dict[str, dict[str, Any]] = {}
        chosen: list[Iterable[ContainerRecord]] = [self.by_service.get(key, ()) for key in scope.complete]
        chosen += [local, self.foreign, self.segmented if scope.segmented else ()]
        for group in chosen:
            for container in group:
                containers[container.slot_id] = self.container_dict(container)
        services = {f"{k[0]}/{k[1]}": self.full[k] for k in scope.complete}
        services.update({f"{k[0]}/{k[1]}": self.partial[k] for k in scope.records})
        return containers, services


class _ListEncoder:
    """JSON of the lists a push's deltas share (an environment's changed containers go to every host): each list
    object encoded once. The lists are kept so that no id is reused while the push runs."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[object, str]] = {}

    def __call__(self, items: list[Any]) -> str:
        kept = self._done.get(id(items))
        if kept is None:
            kept = self._done[id(items)] = (items, json.dumps(items))
        return kept[1]


def _envelope(data_json: str) -> str:
    """A `network` message around already encoded data, as `protocol.Message.encode` writes it."""
    envelope = protocol.Message(protocol.NETWORK)
    text = json.dumps({"v": envelope.v, "type": envelope.type, "id": envelope.id, "data": None})
    return text[: -len("null}")] + data_json + "}"


def _delta_message(delta: Mapping[str, Any], base: int, version: int, lists_json: _ListEncoder) -> str:
    """The encoded `network` delta message: `json.dumps` of {**delta, "base", "version"} in the envelope, with the
    sections' lists encoded through `lists_json`."""

    def sections(of: Mapping[str, list[Any]]) -> str:
        return "{" + ", ".join(f"{json.dumps(name)}: {lists_json(items)}" for name, items in of.items()) + "}"

    fields = [f'"put": {sections(delta["put"])}', f'"remove": {sections(delta["remove"])}']
    fields += [
        f"{json.dumps(name)}: {json.dumps(value)}" for name, value in delta.items() if name not in ("put", "remove")
    ]
    fields += [f'"base": {json.dumps(base)}', f'"version": {json.dumps(version)}']
    return _envelope("{" + ", ".join(fields) + "}")


def _container_record(
    record: SlotRecord, service: Service, seen: ObservedContainer | None, old_spec: Any
) -> ContainerRecord:
    launch = launch_for(service, record.slot, old_spec)
    return ContainerRecord(
        slot_id=record.slot.id,
        name=record.slot.name,
        stack=record.slot.stack,
        service=record.slot.service,
        index=record.slot.index,
        host_id=record.slot.host_id,
        ip=record.ip,
        # desired stopped: out of DNS and the LBs while its agent drains it (agent/drain.py)
        running=record.running and seen is not None and seen.state == "running",
        healthy=seen is not None and seen.health in ("", "healthy"),
        primary=service.spec.sidekick_of or "",
        links=tuple(launch.links),
        external_links=tuple(getattr(launch, "external_links", ())),
        networks=service.spec.networks,
        network_aliases=service.spec.network_aliases,
        internal=service.spec.internal,
    )


def _scoped(session: AgentSession | None) -> bool:
    """Whether the agent gets a scoped state: it takes deltas and scopes, and did not ask for the whole environment."""
    return (
        session is not None
        and session.network_deltas
        and session.network_scope
        and not isinstance(session.network_demand, str)
    )


def _foreign(containers: Iterable[ContainerRecord], nets: Mapping[str, HostNetwork]) -> tuple[ContainerRecord, ...]:
    """The containers whose address lies outside their host's slice (kept with `retain_ip`, or requested)."""
    slices: dict[str, tuple[int, int]] = {}  # host id -> (the slice's network as an integer, its prefix length)
    for host_id, net in nets.items():
        if net.slice:
            network = ipaddress.ip_network(net.slice, strict=False)
            slices[host_id] = (int(network.network_address), network.prefixlen)
    found = []
    for container in containers:
        where = slices.get(container.host_id)
        if container.ip and where is not None:
            shift = 32 - where[1]
            if int.from_bytes(socket.inet_aton(container.ip)) >> shift != where[0] >> shift:
                found.append(container)
    return tuple(found)


def _host_network(host: Host, settings: NetworkSettings) -> HostNetwork:
    """A host as its peers see it; with encryption, its WireGuard key, port and transit address too."""
    plain = HostNetwork(host_id=host.id, name=host.name, address=host.address, slice=host.overlay_slice)
    if not settings.encryption:
        return plain
    return dataclasses.replace(
        plain,
        public_key=host.overlay_key,
        port=host.overlay_port,
        transit=transit_address(settings, host.overlay_slice),
    )


def _host_record(host: Host) -> dict[str, Any]:
    return {
        "host_id": host.id,
        "name": host.name,
        "address": host.address,
        "labels": dict(host.labels),
        "arch": host.facts.arch,
        "state": host.state.value,
    }


def _service_record(service: Service) -> ServiceRecord:
    launch: LaunchConfig = service.spec.launch
    return ServiceRecord(
        stack=service.stack,
        name=service.name,
        scale=service.scale,
        image=launch.image,
        labels=dict(launch.labels),
        metadata=dict(service.spec.metadata),
        sidekicks=tuple(service.spec.sidekicks),
        sidekick_of=service.spec.sidekick_of or "",
        ports=tuple(
            f"{p.host_port}:{p.container_port}/{p.protocol}" if p.host_port else f"{p.container_port}/{p.protocol}"
            for p in launch.ports
        ),
        lb=dict(service.spec.lb_config or {}),
        virtual=dict(service.spec.virtual or {}),
    )


def _oldest_first(records: list[SlotRecord]) -> list[SlotRecord]:
    """By creation, then id (the IPAM's order): two sorts with C-level keys, stable, instead of one with a tuple
    built per record (3.5 % of a loaded server's time at 30,000 slots)."""
    ordered = sorted(records, key=attrgetter("slot.id"))
    ordered.sort(key=attrgetter("created_at"))
    return ordered
