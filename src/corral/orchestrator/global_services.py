"""Global services (`io.rancher.scheduler.global: 'true'`): one container on every matching host.

Why separate from the scaled reconciler: the desired state is per host, not a count. A host matches when it passes
the service's hard host_label rules and the image arch filter (Cattle applies no other rule to global services and
ignores the scale). Every matching active, schedulable, non-evacuating host without a slot gets one (hosts added
later included); a slot on a host that no longer matches (its labels changed) or no longer exists goes; a slot on a
host that is reconnecting, disconnected, evacuating or cordoned stays (it cannot go anywhere else). Indexes stay
unique: new slots and hosts that cannot take theirs (ports, reservations) get the lowest free indexes in host name
order (placed ones first), so `placed + unplaced` is one per host that can run it now. Under a `recreate` /
`recreateOnQuorum` health check an unhealthy container is replaced by a new slot on its own host (`health.py`):
the old slot goes first, and the host's next container never takes an index whose old container may still run
(`blocked`, occupancy.py).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot, ServiceSpec
from corral.orchestrator.health import Replacement, health_replacements
from corral.orchestrator.plans import Plan
from corral.orchestrator.rules import Rules
from corral.orchestrator.scheduling import (
    STAYING_STATES,
    Demand,
    HostLoad,
    HostView,
    SlotView,
    arch_ok,
    fits_capacity,
    format_bytes,
    format_cpus,
    ports_phrase,
    takes_new,
)


def matches(host: HostView, demand: Demand) -> bool:
    """The host should run the global service (hard host_label rules and arch only)."""
    return arch_ok(host, demand.archs) and all(r.host_ok(host.labels) for r in demand.rules.host_rules)


def host_reason(host: HostView, load: HostLoad, demand: Demand) -> str | None:
    """Why this matching host cannot take the service's container now, or None if it can."""
    clash = load.conflicts(host.id, demand.ports)
    if clash:
        return f"host {host.name}: {ports_phrase(clash)} is already in use there"
    if demand.mem and host.memory_bytes and load.mem[host.id] + demand.mem > host.memory_bytes:
        free = max(0, host.memory_bytes - load.mem[host.id])
        return f"host {host.name}: needs {format_bytes(demand.mem)} memory reserved, it has {format_bytes(free)} free"
    if not fits_capacity(host, demand, load.mem[host.id], load.cpu[host.id]):
        free_cpu = max(0.0, host.cpus - load.cpu[host.id])
        return f"host {host.name}: needs {format_cpus(demand.cpu)} reserved, it has {format_cpus(free_cpu)} free"
    return None


def _free_indexes(taken: set[int]) -> Iterator[int]:
    index = 1
    while True:
        if index not in taken:
            yield index
        index += 1


def reconcile_global(
    service: ServiceSpec,
    demand: Demand,
    *,
    environment_id: str,
    slots: Sequence[SlotView],
    load: HostLoad,
    hold: str | None,
    new_id: Callable[[], str],
    now: float = 0.0,
    health_history: Mapping[int, Replacement] | None = None,
    blocked: Mapping[int, str] | None = None,
) -> Plan:
    """The plan for a global service; `hold` (dependencies, malformed labels) keeps slots and places nothing."""
    demand = dataclasses.replace(demand, rules=Rules(hard=demand.rules.host_rules, global_=True))
    want = service.launch.config_hash()
    removed: list[SlotView] = []
    by_host: defaultdict[str, list[SlotView]] = defaultdict(list)
    for view in slots:
        host = load.hosts.get(view.slot.host_id)
        if host is None or view.slot.index < 1 or not matches(host, demand):
            removed.append(view)
        else:
            by_host[host.id].append(view)

    chosen: dict[str, SlotView] = {}
    for host_id, group in by_host.items():
        best = min(
            group,
            key=lambda v: (
                v.observed_state != "running",
                v.observed_hash != want,
                v.slot.config_hash != want,
                v.slot.index,
                v.slot.id,
            ),
        )
        chosen[host_id] = best
        removed.extend(v for v in group if v is not best)
    seen: set[int] = set()
    for host_id, view in sorted(chosen.items(), key=lambda item: (item[1].slot.index, load.hosts[item[0]].name)):
        if view.slot.index in seen:
            removed.append(view)
            del chosen[host_id]
        seen.add(view.slot.index)

    kept: list[str] = []
    updated: list[ContainerSlot] = []
    unplaced: list[tuple[int, str]] = []
    changed: list[tuple[HostView, SlotView]] = []
    replaced: list[tuple[str, ContainerSlot]] = []
    active = {v.slot.index: v for h, v in chosen.items() if load.hosts[h].state is HostState.ACTIVE}
    unhealthy = (
        {}
        if hold is not None
        else health_replacements(service.health(), active, now=now, history=health_history or {}).replace
    )
    for host_id, view in chosen.items():
        host = load.hosts[host_id]
        if view.slot.index in unhealthy:  # it goes; a new container follows on this host once it has stopped
            demand.claim(load, host_id, view.slot.index)
            removed.append(view)
            waiting = f"{unhealthy[view.slot.index]}; waiting for {view.slot.name} on {host.name} to stop"
            unplaced.append((view.slot.index, waiting))
        elif hold is not None or view.slot.config_hash == want or host.state not in STAYING_STATES:
            kept.append(view.slot.id)
            demand.claim(load, host_id, view.slot.index)
        else:
            changed.append((host, view))
    for host, view in sorted(changed, key=lambda item: item[1].slot.index):
        clash = load.conflicts(host.id, demand.ports)
        if clash:
            removed.append(view)
            why = f"host {host.name}: its new configuration publishes {ports_phrase(clash)}, already in use there"
            unplaced.append((view.slot.index, why))
        else:
            demand.claim(load, host.id, view.slot.index)
            updated.append(dataclasses.replace(view.slot, config_hash=want))

    taken = {v.slot.index for v in chosen.values()} | set(blocked or {})
    free = _free_indexes(taken | {i for i, _ in unplaced})
    place: list[ContainerSlot] = []
    refusals: list[str] = []
    for host in sorted(load.hosts.values(), key=lambda h: (h.name, h.id)):
        if host.id in chosen or not takes_new(host) or not matches(host, demand):
            continue
        cannot = hold if hold is not None else host_reason(host, load, demand)
        if cannot is not None:
            refusals.append(cannot)
            continue
        index = next(free)
        slot = ContainerSlot(
            id=new_id(),
            environment_id=environment_id,
            stack=demand.stack,
            service=service.name,
            index=index,
            host_id=host.id,
            config_hash=want,
        )
        demand.claim(load, host.id, index)
        place.append(slot)
    unplaced.extend((next(free), reason) for reason in refusals)  # after the placed ones: placed indexes stay dense

    removed.sort(key=lambda v: (-v.slot.index, v.slot.id))
    index_of = {v.slot.id: v.slot.index for v in chosen.values()}
    return Plan(
        place=tuple(place),
        remove=tuple(v.slot.id for v in removed),
        replace=tuple(sorted(replaced, key=lambda pair: pair[1].index)),
        update=tuple(sorted(updated, key=lambda s: s.index)),
        keep=tuple(sorted(kept, key=lambda sid: index_of[sid])),
        unplaced=tuple(sorted(unplaced)),
    )
