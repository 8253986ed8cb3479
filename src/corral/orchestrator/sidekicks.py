"""Sidekicks: a primary service and its sidekicks are one deployment unit (same host, same index, one scale).

Why a module of its own: a sidekick is never scheduled. Its slots mirror the primary's after the primary's plan:
one slot per primary slot, with the same index on the same host; a sidekick slot moves when the primary's moves
(replace), goes when the primary's goes, and its own scale is ignored. Placement of the unit happens once, for the
primary, with a `Demand` that carries the whole unit's host ports and reservations, so a host is chosen only if
every container of the unit fits. For that, the sidekicks' own slots are left out of the load the primary is placed
against (their ports and reservations are counted in the unit's demand instead, or a unit would clash with itself).

The server reconciles every primary before its sidekicks in one pass and hands each sidekick its primary's slots
as planned (`PrimaryPlacement`). Works for scaled and global primaries alike: only the primary's slots matter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from corral.model.stack import ContainerSlot, ServiceSpec
from corral.orchestrator.plans import Plan, apply_plan
from corral.orchestrator.scheduling import Demand, SlotView


@dataclass(frozen=True)
class PrimaryPlacement:
    """A primary's slots after its plan this pass (`apply_plan`), and the indexes it could not place, with why."""

    name: str
    slots: tuple[ContainerSlot, ...]
    unplaced: tuple[tuple[int, str], ...] = ()


def primary_placement(name: str, slots: Sequence[SlotView], plan: Plan) -> PrimaryPlacement:
    """What a primary's sidekicks follow: its slots once `plan` is applied, and what it could not place."""
    return PrimaryPlacement(name, tuple(apply_plan(slots, plan)), plan.unplaced)


def unit_demand(demand: Demand, sidekicks: Iterable[ServiceSpec]) -> Demand:
    """The primary's demand grown by its sidekicks' host ports and reservations (they land on the same host)."""
    ports = set(demand.ports)
    mem, cpu = demand.mem, demand.cpu
    for sidekick in sidekicks:
        ports |= sidekick.launch.published_ports()
        mem += sidekick.mem_reservation_bytes or 0
        cpu += sidekick.cpu_reservation or 0.0
    return dataclasses.replace(demand, ports=frozenset(ports), mem=mem, cpu=cpu)


def outside_unit(other_slots: Sequence[SlotView], stack: str, sidekicks: Iterable[str]) -> list[SlotView]:
    """`other_slots` without the slots of the primary's own sidekicks (the unit demand counts them)."""
    members = frozenset(sidekicks)
    return [v for v in other_slots if not (v.slot.stack == stack and v.slot.service in members)]


def reconcile_sidekick(
    service: ServiceSpec,
    *,
    stack: str,
    environment_id: str,
    slots: Sequence[SlotView],
    primary: PrimaryPlacement | None,
    new_id: Callable[[], str],
    accepted_hashes: frozenset[str] = frozenset(),
    blocked: Mapping[int, str] | None = None,
) -> Plan:
    """Mirror the primary's slots: keep (or update in place) a sidekick slot on its primary slot's host and index,
    move one of the same index there otherwise, place a new one if none; every other sidekick slot goes.

    Without a primary (it is gone from the stack) the sidekick has no slots. Indexes the primary cannot place are
    reported for the sidekick too, naming the primary. Slots with a hash in `accepted_hashes` (the old config of a
    rolling upgrade of the sidekick) are kept as they are: the upgrade replaces them batch by batch. An index in
    `blocked` (an old container of the sidekick's may still run there, occupancy.py) gets no new container yet.
    """
    blocked = blocked or {}
    waiting: list[tuple[int, str]] = []
    want = service.launch.config_hash()
    targets = sorted({(s.index, s.host_id) for s in primary.slots}) if primary is not None else []
    wanted = set(targets)

    def quality(view: SlotView) -> tuple[bool, bool, bool, bool, str]:
        return (
            (view.slot.index, view.slot.host_id) not in wanted,
            view.observed_state != "running",
            view.observed_hash != want,
            view.slot.config_hash != want,
            view.slot.id,
        )

    taken: set[tuple[int, str]] = set()
    kept: list[ContainerSlot] = []
    updated: list[ContainerSlot] = []
    leftovers: list[SlotView] = []
    for view in sorted(slots, key=quality):
        key = (view.slot.index, view.slot.host_id)
        if key in wanted and key not in taken:
            taken.add(key)
            if view.slot.config_hash == want or view.slot.config_hash in accepted_hashes:
                kept.append(view.slot)
            else:
                updated.append(dataclasses.replace(view.slot, config_hash=want))
        else:
            leftovers.append(view)

    place: list[ContainerSlot] = []
    replace: list[tuple[str, ContainerSlot]] = []
    for index, host_id in targets:
        if (index, host_id) in taken:
            continue
        if index in blocked:
            waiting.append((index, blocked[index]))
            continue
        new = ContainerSlot(
            id=new_id(),
            environment_id=environment_id,
            stack=stack,
            service=service.name,
            index=index,
            host_id=host_id,
            config_hash=want,
        )
        old = next((v for v in leftovers if v.slot.index == index), None)
        if old is None:
            place.append(new)
        else:
            leftovers.remove(old)
            replace.append((old.slot.id, new))

    removed = sorted(leftovers, key=lambda v: (-v.slot.index, v.slot.id))
    unplaced = tuple((i, f"its primary {primary.name}: {why}") for i, why in primary.unplaced) if primary else ()
    unplaced = tuple(sorted((*unplaced, *waiting)))
    return Plan(
        place=tuple(place),
        remove=tuple(v.slot.id for v in removed),
        replace=tuple(replace),
        update=tuple(sorted(updated, key=lambda s: (s.index, s.id))),
        keep=tuple(s.id for s in sorted(kept, key=lambda s: (s.index, s.id))),
        unplaced=unplaced,
    )
