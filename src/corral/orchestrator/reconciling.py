"""The Cattle service reconciler: from a service's spec and its slots to a plan with named buckets.

Why pure and why buckets (Nomad's reconciler): the server calls `reconcile` for one service with a snapshot of hosts
and slots and applies the returned `Plan` to its store; tests do the same with `apply_plan` and no server at all.
Each bucket is one kind of change, so the server can batch its writes and the counting invariants are checkable:
every input slot lands in exactly one of keep / update / remove / replace, and every index 1..scale is either
covered by a slot or explained in `unplaced`.

Rules (Rancher 1.x semantics, minus its known faults):
- desired count is `service.scale`, indexes are 1..scale, the lowest free index is filled first;
- scale down drops the highest indexes; of duplicates of one index the best one stays (staying host, running,
  matching config hash), the rest go; slots on hosts that no longer exist go;
- slots on disconnected (or otherwise lost) hosts move to an active host with the same index, *whatever the
  service* (Rancher moved only health-checked ones); the old slot leaves the desired state so that the host's agent
  removes the stale copy when it returns. If no host can take it, the old slot stays and the reason is reported;
- slots on reconnecting hosts stay (grace period);
- a changed config hash is applied in place (the agent recreates the container), unless the new config's host
  ports clash on that host: then the slot moves, and if no host can take it, it goes (its index is reported);
- a host is infeasible when any of the service's published (port, protocol) pairs is in use there by any slot,
  counting the slots placed by this same plan. A running container holding its port wins a clash;
- while dependencies are not ready nothing is placed, moved or updated (a recreate is a start); slots stay.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot, ServiceSpec
from corral.orchestrator.scheduling import (
    STAYING_STATES,
    HostLoad,
    HostView,
    SlotView,
    SpreadPlacer,
    ports_phrase,
)

__all__ = ["HostView", "Plan", "SlotView", "apply_plan", "reconcile"]


@dataclass(frozen=True)
class Plan:
    """What to change for one service. Slot ids refer to the `slots` given to `reconcile`."""

    place: tuple[ContainerSlot, ...] = ()  # new slots: new id, free index, chosen host, current config hash
    remove: tuple[str, ...] = ()  # slot ids to drop (highest index first)
    replace: tuple[tuple[str, ContainerSlot], ...] = ()  # (old slot id, new slot with the same index elsewhere)
    update: tuple[ContainerSlot, ...] = ()  # same id, host and index, current config hash (recreated in place)
    keep: tuple[str, ...] = ()  # slot ids that stay as they are
    unplaced: tuple[tuple[int, str], ...] = ()  # (index, reason) for every index that cannot be placed where it should

    @property
    def empty(self) -> bool:
        """Nothing to place, remove, replace or update (kept slots and reasons may remain)."""
        return not (self.place or self.remove or self.replace or self.update)

    @property
    def reasons(self) -> dict[int, str]:
        return dict(self.unplaced)


@dataclass(frozen=True)
class _Move:
    view: SlotView
    why: str
    lost: bool  # its host is neither active nor reconnecting (disconnected, removing...): it stays if it cannot move


def _host_rank(state: HostState | None) -> int:
    if state is HostState.ACTIVE:
        return 0
    if state is HostState.RECONNECTING:
        return 1
    return 2


def dependencies_reason(service: ServiceSpec) -> str:
    names = ", ".join(service.depends_on)
    return f"waiting for dependencies: {names}" if names else "waiting for dependencies"


def reconcile(
    service: ServiceSpec,
    *,
    stack: str,
    environment_id: str,
    slots: Sequence[SlotView],
    hosts: Sequence[HostView],
    other_slots: Sequence[SlotView],
    dependencies_ready: bool,
    new_id: Callable[[], str],
    now: float,
) -> Plan:
    """Plan the changes that bring `slots` (this service's) to `service`'s desired state.

    `other_slots` are all other slots of the environment (ports in use, total load per host). `new_id` makes ids
    for new slots. `now` is reserved for deadlines (not used by this first cut).
    """
    del now
    want = service.launch.config_hash()
    ports = service.launch.published_ports()
    scale = max(0, service.scale)
    load = HostLoad(hosts)
    for other in other_slots:
        load.claim(other.slot.host_id, other.published_ports, own=False)

    def host_state(view: SlotView) -> HostState | None:
        host = load.hosts.get(view.slot.host_id)
        return host.state if host is not None else None

    # 1. Drop slots outside 1..scale or on vanished hosts; of duplicates of one index keep the best.
    removed: list[SlotView] = []
    by_index: defaultdict[int, list[SlotView]] = defaultdict(list)
    for view in slots:
        if view.slot.host_id not in load.hosts or not 1 <= view.slot.index <= scale:
            removed.append(view)
        else:
            by_index[view.slot.index].append(view)
    chosen: dict[int, SlotView] = {}
    for index, group in by_index.items():
        best = min(
            group,
            key=lambda v: (
                _host_rank(host_state(v)),
                v.observed_state != "running",
                v.observed_hash != want,
                v.slot.config_hash != want,
                v.slot.id,
            ),
        )
        chosen[index] = best
        removed.extend(v for v in group if v is not best)

    # 2. Decide which chosen slots stay where they are. Without ready dependencies nothing changes (a recreate is a
    #    start, and starts wait for dependencies). Otherwise running holders of their ports claim them first, then
    #    unchanged slots, then slots to update in place, each by index; a clash or a lost host makes a slot move.
    kept: dict[int, str] = {}
    updated: dict[int, ContainerSlot] = {}
    moving: dict[int, _Move] = {}
    staying = {i: v for i, v in sorted(chosen.items()) if host_state(v) in STAYING_STATES}
    for index, view in chosen.items():
        if index not in staying:
            host = load.hosts[view.slot.host_id]
            moving[index] = _Move(view, f"its host {host.name} is {host.state.value}", lost=True)
        elif not dependencies_ready:
            kept[index] = view.slot.id
    holders = {i for i, v in staying.items() if v.slot.config_hash == want and v.holds_its_ports}
    for index in sorted(holders) if dependencies_ready else ():
        kept[index] = staying[index].slot.id
        load.claim(staying[index].slot.host_id, ports, own=True)
    for unchanged in (True, False) if dependencies_ready else ():
        for index, view in staying.items():
            if index in holders or (view.slot.config_hash == want) != unchanged:
                continue
            host = load.hosts[view.slot.host_id]
            clash = load.conflicts(host.id, ports)
            if clash and unchanged:
                why = f"{ports_phrase(clash)} is also in use on its host {host.name}"
                moving[index] = _Move(view, why, lost=False)
            elif clash:
                why = f"its new configuration publishes {ports_phrase(clash)}, already in use on its host {host.name}"
                moving[index] = _Move(view, why, lost=False)
            else:
                load.claim(host.id, ports, own=True)
                if unchanged:
                    kept[index] = view.slot.id
                else:
                    updated[index] = dataclasses.replace(view.slot, config_hash=want)

    # 3. Fill the indexes without a staying slot, lowest first: move lost or clashing slots, place missing ones.
    #    A slot on a lost host that cannot move stays (it may come back); a clashing one that cannot move goes.
    placer = SpreadPlacer(load, ports, service.name)
    place: list[ContainerSlot] = []
    replace: list[tuple[str, ContainerSlot]] = []
    unplaced: list[tuple[int, str]] = []

    def new_slot(index: int, host: HostView) -> ContainerSlot:
        return ContainerSlot(
            id=new_id(),
            environment_id=environment_id,
            stack=stack,
            service=service.name,
            index=index,
            host_id=host.id,
            config_hash=want,
        )

    for index in range(1, scale + 1):
        if index in kept or index in updated:
            continue
        move = moving.get(index)
        if not dependencies_ready:
            if move is None:
                unplaced.append((index, dependencies_reason(service)))
            else:
                kept[index] = move.view.slot.id
                unplaced.append((index, f"{dependencies_reason(service)} (before moving it: {move.why})"))
            continue
        target = placer.take()
        if target is not None:
            if move is None:
                place.append(new_slot(index, target))
            else:
                replace.append((move.view.slot.id, new_slot(index, target)))
        elif move is None:
            unplaced.append((index, placer.reason()))
        else:
            if move.lost:
                kept[index] = move.view.slot.id
            else:
                removed.append(move.view)
            unplaced.append((index, f"{move.why}, and no active host can take it: {placer.reason()}"))

    removed.sort(key=lambda v: (-v.slot.index, v.slot.id))
    return Plan(
        place=tuple(place),
        remove=tuple(v.slot.id for v in removed),
        replace=tuple(replace),
        update=tuple(updated[i] for i in sorted(updated)),
        keep=tuple(kept[i] for i in sorted(kept)),
        unplaced=tuple(unplaced),
    )


def apply_plan(slots: Sequence[SlotView], plan: Plan) -> list[ContainerSlot]:
    """The service's slots after `plan`, sorted by (index, id). Ids the plan names but `slots` lacks are ignored."""
    dropped = set(plan.remove) | {old for old, _ in plan.replace}
    updates = {slot.id: slot for slot in plan.update}
    result = [updates.get(v.slot.id, v.slot) for v in slots if v.slot.id not in dropped]
    result.extend(plan.place)
    result.extend(new for _, new in plan.replace)
    return sorted(result, key=lambda s: (s.index, s.id))
