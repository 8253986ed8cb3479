"""The orchestrator pass's inputs as the pure planner (corral.orchestrator) wants them: what it sees of a host and
of a slot, what an environment's plan is made from (to skip a quiet one), what a service waits for, who belongs to a
sidekick unit, which address a moved slot keeps.

Why apart from the planner: these are pure translations from stored entities to the planner's views, with no loop,
store or agent in them; the pass (orchestrator/environment_plan.py) and the plan preview (server/routes/api_plan.py)
share them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from corral.model.container_labels import CONFIG_HASH, is_start_once
from corral.model.entities import Host, ObservedContainer
from corral.model.stack import ContainerSlot, LeftoverRecord, Service, ServiceSpec, SlotRecord
from corral.orchestrator.dependencies import STARTED, Dependency, dependencies_wait
from corral.orchestrator.reconciling import HostView, Plan, SlotView


def sidekicks_by_primary(services: Sequence[Service]) -> dict[tuple[str, str], list[ServiceSpec]]:
    """(stack id, primary name) -> the specs of its sidekicks, for the whole environment at once (one scan, not
    one per service)."""
    result: dict[tuple[str, str], list[ServiceSpec]] = defaultdict(list)
    for s in services:
        if s.spec.sidekick_of is not None:
            result[(s.stack_id, s.spec.sidekick_of)].append(s.spec)
    return result


def environment_inputs(
    hosts: list[HostView],
    image_reports: list[dict[str, tuple[str, ...]]],
    services: list[Service],
    slots: list[SlotRecord],
    observed: Mapping[str, ObservedContainer],
) -> tuple[Any, ...]:
    """What an environment's plan is made from, comparable with `==` (of the reported containers only what the
    planner reads)."""
    seen = tuple(
        (r.slot.id, c.state, c.exit_code, c.health, c.labels.get(CONFIG_HASH))
        for r in slots
        if (c := observed.get(r.slot.id)) is not None
    )
    return (hosts, image_reports, services, slots, seen)


def carried_addresses(service: Service, records: Iterable[SlotRecord], plan: Plan) -> dict[str, str]:
    """For a `retain_ip` service: new slot id -> the address of the slot it replaces (kept across the replace)."""
    if not service.spec.retain_ip:
        return {}
    ips = {r.slot.id: r.ip for r in records}
    return {new.id: ips[old] for old, new in plan.replace if ips.get(old)}


def addresses_of_leftovers(stored: Sequence[LeftoverRecord], service: Service, plan: Plan) -> dict[str, str]:
    """New slot id -> the address of the removed slot of its index (the newest one that had an address)."""
    ips = {
        item.index: item.ip
        for item in sorted(stored, key=lambda i: i.created_at)
        if item.ip and item.stack == service.stack and item.service == service.name
    }
    return {slot.id: ips[slot.index] for slot in plan.place if slot.index in ips}


def unit_members(service: Service, sidekicks: dict[tuple[str, str], list[ServiceSpec]]) -> list[str]:
    """The services placed as one with this one (a primary and its sidekicks): an index waits for any of them."""
    primary = service.spec.sidekick_of or service.name
    return [primary, *(spec.name for spec in sidekicks.get((service.stack_id, primary), []))]


def has_changes(plan: Plan) -> bool:
    return bool(plan.place or plan.remove or plan.replace or plan.update)


def host_view(host: Host) -> HostView:
    return HostView(
        id=host.id,
        name=host.name,
        state=host.state,
        labels=dict(host.labels),
        arch=host.facts.arch,
        schedulable=host.schedulable,
        evacuating=host.evacuating,
        cpus=float(host.facts.cpus),
        memory_bytes=host.facts.memory_bytes,
        volumes=frozenset(v.name for v in host.volumes),
    )


def slot_view(record: SlotRecord, observed: ObservedContainer | None, spec: ServiceSpec | None) -> SlotView:
    view = view_of(record.slot, observed, spec)
    if record.host_ports:  # its random host ports are taken on its host too
        taken = frozenset((host_port, protocol) for _, protocol, host_port in record.host_ports)
        view = dataclasses.replace(view, published_ports=view.published_ports | taken)
    return view


class SlotViews:
    """`slot_view`, remembering each slot's view while its record, container and spec stay the same objects (the
    in-memory state's snapshots share what did not change): a pass over 30,000 slots after a scale by one makes
    the views of the slots that changed. Bounded: past `limit` slots it starts afresh."""

    def __init__(self, limit: int = 2_000_000) -> None:
        self.limit = limit
        self._made: dict[str, tuple[SlotRecord, ObservedContainer | None, ServiceSpec | None, SlotView]] = {}

    def __call__(self, record: SlotRecord, observed: ObservedContainer | None, spec: ServiceSpec | None) -> SlotView:
        made = self._made.get(record.slot.id)
        if made is not None and made[0] is record and made[1] is observed and made[2] is spec:
            return made[3]
        view = slot_view(record, observed, spec)
        if len(self._made) >= self.limit:
            self._made.clear()
        self._made[record.slot.id] = (record, observed, spec, view)
        return view


def view_of(slot: ContainerSlot, observed: ObservedContainer | None, spec: ServiceSpec | None) -> SlotView:
    """What the scheduler needs to know of a slot: its container's state, and its service's ports, labels and
    reservations (which count on the slot's host)."""
    return SlotView(
        slot=slot,
        observed_state=observed.state if observed is not None else None,
        observed_hash=observed.labels.get(CONFIG_HASH) if observed is not None else None,
        health=observed.health if observed is not None else "",
        published_ports=spec.launch.published_ports() if spec is not None else frozenset(),
        labels=spec.launch.labels if spec is not None else (),
        mem_reservation_bytes=(spec.mem_reservation_bytes or 0) if spec is not None else 0,
        cpu_reservation=(spec.cpu_reservation or 0.0) if spec is not None else 0.0,
    )


def dependencies_wait_of(
    service: Service,
    services: Sequence[Service],
    slots_by_service: Mapping[str, Sequence[SlotRecord]],
    observed: Mapping[str, ObservedContainer],
) -> str | None:
    """What the service waits for before it starts: each service it depends on runs all its containers (Compose's
    start order), or is healthy or completed as its depends_on condition asks (orchestrator/dependencies.py)."""
    conditions = dict(service.spec.depends_conditions)
    dependencies = []
    for name in service.spec.depends_on:
        dependency = next((s for s in services if s.stack_id == service.stack_id and s.name == name), None)
        if dependency is not None:
            launch = dependency.spec.launch
            slots = [r for r in slots_by_service.get(dependency.id, ()) if not r.retired]
            containers = [observed.get(record.slot.id) for record in slots]
            once = launch.run_once or is_start_once(launch.labels)
            dependencies.append(Dependency(name, conditions.get(name, STARTED), dependency.scale, containers, once))
    return dependencies_wait(dependencies)
