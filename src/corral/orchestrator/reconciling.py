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
- slots on reconnecting hosts stay (grace period); slots on evacuating hosts move like a disconnected host's, and
  stay if no host can take them; hosts that are not schedulable take nothing new but keep their slots;
- a changed config hash is applied in place (the agent recreates the container), unless the new config's host
  ports clash on that host: then the slot moves, and if no host can take it, it goes (its index is reported);
- a host is infeasible when any of the service's published (port, protocol) pairs is in use there by any slot,
  counting the slots placed by this same plan. A running container holding its port wins a clash;
- under a `recreate` / `recreateOnQuorum` health check, a slot whose container is unhealthy moves like a lost host's
  (`health.py` decides which, with a quorum and a backoff per index); a global service's unhealthy container is
  replaced on its own host;
- while dependencies are not ready nothing is placed, moved or updated (a recreate is a start); slots stay. The
  same holds while the service's scheduling labels are malformed (the reason names the label);
- at most one container per (service, index): a new container for an index is placed only when no container the
  plan no longer wants at that index may still run (`blocked`, from `occupancy.py`); a slot that moves off a host
  that still answers (evacuating, unhealthy, a port clash) goes first and its index waits for its container to be
  observed stopped ("waiting for r-a-1 on h2 to stop"); only a disconnected host's slot is replaced at once;
- placement follows the service's scheduling labels (`rules.py`: affinity, soft rules, reservations, image archs);
  existing slots are not moved when a host stops satisfying a rule (as in Rancher), except for global services
  (`global_services.py`): one slot per matching host, and a host that stops matching loses its slot.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from corral.model.entities import HostState, normalise_arch
from corral.model.errors import InvalidInput
from corral.model.stack import ContainerSlot, ServiceSpec
from corral.orchestrator.global_services import reconcile_global
from corral.orchestrator.health import Replacement, health_replacements
from corral.orchestrator.occupancy import RELEASING_STATES
from corral.orchestrator.plans import Plan, apply_plan
from corral.orchestrator.rules import NO_RULES, Rules, parse_rules, system_labels
from corral.orchestrator.scheduling import (
    STAYING_STATES,
    Demand,
    HostLoad,
    HostView,
    SlotView,
    SpreadPlacer,
    ports_phrase,
    takes_new,
)
from corral.orchestrator.sidekicks import PrimaryPlacement, outside_unit, reconcile_sidekick, unit_demand
from corral.orchestrator.volume_affinity import Holder, affinity, why_not_there

__all__ = ["HostView", "Plan", "SlotView", "apply_plan", "reconcile"]


@dataclass(frozen=True)
class _Move:
    view: SlotView
    why: str
    lost: bool  # its host is not active/reconnecting, or its container is unhealthy: it stays if it cannot move


def _host_rank(host: HostView | None) -> int:
    if host is not None and host.evacuating:
        return 2
    if host is not None and host.state is HostState.ACTIVE:
        return 0
    if host is not None and host.state is HostState.RECONNECTING:
        return 1
    return 3


def staying(host: HostView | None) -> bool:
    """A slot on this host stays where it is (active or reconnecting, and not evacuating)."""
    return host is not None and host.state in STAYING_STATES and not host.evacuating


def released_host(host: HostView | None) -> bool:
    """Nothing runs there that Corral could wait for: the host is gone or past its grace period."""
    return host is None or host.state in RELEASING_STATES


def _waiting_for(view: SlotView, host: HostView | None) -> str:
    where = f" on {host.name}" if host is not None else ""
    return f"waiting for {view.slot.name}{where} to stop"


def demand_of(
    service: ServiceSpec, stack: str, rules: Rules, image_archs: frozenset[str] | None, *, with_labels: bool = False
) -> Demand:
    watched = with_labels or rules.watched_keys
    labels = (*service.launch.labels, *system_labels(stack, service.name)) if watched else ()
    return Demand(
        stack=stack,
        service=service.name,
        ports=service.launch.published_ports(),
        labels=labels,
        mem=service.mem_reservation_bytes or 0,
        cpu=service.cpu_reservation or 0.0,
        rules=rules,
        archs=frozenset(normalise_arch(a) for a in image_archs) if image_archs is not None else None,
    )


def volume_holders(service: ServiceSpec, hosts: Iterable[HostView]) -> list[Holder]:
    """The hosts holding any volume (only when the service mounts a local stack or per-container volume)."""
    if not any(v.kind == "volume" and v.scope in ("", "container") for v in service.launch.volumes):
        return []
    return [Holder(h.id, h.name, h.state, h.volumes, takes_new(h), h.evacuating) for h in hosts if h.volumes]


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
    image_archs: frozenset[str] | None = None,
    accepted_hashes: frozenset[str] = frozenset(),
    sidekicks: Sequence[ServiceSpec] = (),
    primary: PrimaryPlacement | None = None,
    health_history: Mapping[int, Replacement] | None = None,
    load: HostLoad | None = None,
    blocked: Mapping[int, str] | None = None,
    waiting_for: str | None = None,
) -> Plan:
    """Plan the changes that bring `slots` (this service's) to `service`'s desired state.

    `other_slots` are all other slots of the environment (ports, labels, reservations and total load per host).
    Instead of them, a pass over many services may give a `load` made with `HostLoad.shared` that holds all other
    slots (the caller releases this service's slots from it first): then `hosts` and `other_slots` are not read,
    and on return the load holds this plan's resulting slots too (incremental: no rebuild per service). Sidekick
    units need `other_slots`.
    `new_id` makes ids for new slots. `image_archs`, when given, are the architectures the image runs on (any
    spelling): only hosts with one of them take new slots. Slots with a config hash in `accepted_hashes` count as
    current (a rolling upgrade's old slots: orchestrator/upgrades.py retires them, they are not updated in place).
    `now` and `health_history` drive the health-check strategy (health.py: unhealthy slots are replaced, with a
    backoff per index). A primary gets its `sidekicks`' specs (the unit is placed as one); a sidekick
    (`service.sidekick_of`) gets its primary's planned slots and only mirrors them (sidekicks.py).
    `blocked` maps the indexes whose old container may still run (occupancy.py `blocked_indexes`; for a unit, every
    member's) to the reason: no new container is placed there. `waiting_for` says what unmet dependencies wait for
    (dependencies.py), the hold's reason.
    """
    if load is not None and (sidekicks or service.sidekick_of is not None):
        raise ValueError(f"service {service.name}: a shared host load does not support sidekick units")
    if service.sidekick_of is not None:
        return reconcile_sidekick(
            service,
            stack=stack,
            environment_id=environment_id,
            slots=slots,
            primary=primary,
            new_id=new_id,
            accepted_hashes=accepted_hashes,
            blocked=blocked,
        )
    hold: str | None = None if dependencies_ready else (waiting_for or dependencies_reason(service))
    try:
        rules = parse_rules(service.launch.labels, stack=stack, service=service.name)
    except InvalidInput as exc:
        rules, hold = NO_RULES, f"invalid scheduling label: {exc.message}"
    if load is None:
        demand = demand_of(service, stack, rules, image_archs)
        if sidekicks:
            demand = unit_demand(demand, sidekicks)
            other_slots = outside_unit(other_slots, stack, (s.name for s in sidekicks))
        load = HostLoad(hosts, rules)
        for other in other_slots:
            load.claim_view(other)
    else:
        demand = demand_of(service, stack, rules, image_archs, with_labels=load.watches_labels)
        load.begin_service()
    if rules.global_:
        plan = reconcile_global(
            service,
            demand,
            environment_id=environment_id,
            slots=slots,
            load=load,
            hold=hold,
            new_id=new_id,
            now=now,
            health_history=health_history or {},
            blocked=blocked or {},
        )
    else:
        plan = _reconcile_scaled(
            service,
            demand,
            environment_id,
            slots,
            load,
            hold,
            new_id,
            accepted_hashes,
            now,
            health_history or {},
            blocked or {},
        )
    if load.is_shared:
        _claim_unclaimed_kept(load, demand, slots, plan)
    return plan


def _claim_unclaimed_kept(load: HostLoad, demand: Demand, slots: Sequence[SlotView], plan: Plan) -> None:
    """Kept slots the plan did not claim (held by dependencies, stuck on a lost host) still take room on their
    host: claim them in the shared load so that the next services see them."""
    if not plan.keep:
        return
    kept = set(plan.keep)
    for view in slots:
        where = (view.slot.host_id, view.slot.index)
        if view.slot.id in kept and where not in load.own_claimed and view.slot.host_id in load.hosts:
            demand.claim(load, *where)


PINNED_NOTE = "a standalone container is not moved to another host"


def _place_pinned(
    host_id: str,
    index: int,
    placer: SpreadPlacer,
    load: HostLoad,
    place: list[ContainerSlot],
    unplaced: list[tuple[int, str]],
    new_slot: Callable[[int, HostView], ContainerSlot],
) -> None:
    """A pinned (standalone) container's index without a slot: on its own host, or nowhere with the reason."""
    host = load.hosts.get(host_id)
    if host is None:
        unplaced.append((index, f"its host {host_id} was removed; {PINNED_NOTE}"))
        return
    target = placer.take_on(index, frozenset((host_id,)))
    if target is not None:
        place.append(new_slot(index, target))
    elif not takes_new(host):
        status = "evacuating" if host.evacuating else host.state.value
        unplaced.append((index, f"its host {host.name} is {status}; {PINNED_NOTE}"))
    else:
        unplaced.append((index, f"its host {host.name} cannot take it: {placer.reason()}"))


def _reconcile_scaled(
    service: ServiceSpec,
    demand: Demand,
    environment_id: str,
    slots: Sequence[SlotView],
    load: HostLoad,
    hold: str | None,
    new_id: Callable[[], str],
    accepted_hashes: frozenset[str] = frozenset(),
    now: float = 0.0,
    health_history: Mapping[int, Replacement] | None = None,
    blocked: Mapping[int, str] | None = None,
) -> Plan:
    want = service.launch.config_hash()
    blocked = blocked or {}
    current_hashes = {want, *accepted_hashes}
    ports = demand.ports
    stack = demand.stack
    scale = max(0, service.scale)
    dependencies_ready = hold is None

    def host_of(view: SlotView) -> HostView | None:
        return load.hosts.get(view.slot.host_id)

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
                _host_rank(host_of(v)),
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
    stays = {i: v for i, v in sorted(chosen.items()) if staying(host_of(v))}
    for index, view in chosen.items():
        if index not in stays:
            host = load.hosts[view.slot.host_id]
            status = "evacuating" if host.evacuating else host.state.value
            moving[index] = _Move(view, f"its host {host.name} is {status}", lost=True)
        elif not dependencies_ready:
            kept[index] = view.slot.id
    if dependencies_ready:  # unhealthy containers move like a lost host's: a new slot, the old one goes
        health = health_replacements(service.health(), stays, now=now, history=health_history or {})
        for index, why in health.replace.items():
            moving[index] = _Move(stays.pop(index), why, lost=True)
    holders = {i for i, v in stays.items() if v.slot.config_hash in current_hashes and v.holds_its_ports}
    for index in sorted(holders) if dependencies_ready else ():
        kept[index] = stays[index].slot.id
        demand.claim(load, stays[index].slot.host_id, index)
    for unchanged in (True, False) if dependencies_ready else ():
        for index, view in stays.items():
            if index in holders or (view.slot.config_hash in current_hashes) != unchanged:
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
                demand.claim(load, host.id, index)
                if unchanged:
                    kept[index] = view.slot.id
                else:
                    updated[index] = dataclasses.replace(view.slot, config_hash=want)

    # 3. Fill the indexes without a staying slot, lowest first: move lost or clashing slots, place missing ones.
    #    A slot on a lost host that cannot move stays (it may come back); a clashing one that cannot move goes.
    made: list[SpreadPlacer] = []  # made when an index needs a host (most passes of most services place nothing)

    def placer() -> SpreadPlacer:
        if not made:  # the load is as it was here: nothing before the first placement changes it
            made.append(SpreadPlacer(load, demand))
        return made[0]

    volume_hosts = volume_holders(service, load.hosts.values())
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
        if hold is not None:
            if move is None:
                unplaced.append((index, hold))
            else:
                kept[index] = move.view.slot.id
                unplaced.append((index, f"{hold} (before moving it: {move.why})"))
            continue
        if service.pinned_host is not None and move is not None:  # a standalone container is never moved
            kept[index] = move.view.slot.id
            unplaced.append((index, f"{move.why}; {PINNED_NOTE}"))
            continue
        waiting = blocked.get(index)
        if move is None and waiting is not None:
            unplaced.append((index, waiting))
            continue
        if move is not None and waiting is not None and released_host(host_of(move.view)):
            kept[index] = move.view.slot.id  # lost, and another old container of its index still runs
            unplaced.append((index, f"{move.why}; {waiting}"))
            continue
        if service.pinned_host is not None:
            _place_pinned(service.pinned_host, index, placer(), load, place, unplaced, new_slot)
            continue
        pin = affinity(service.launch.volumes, index, volume_hosts) if volume_hosts else None
        target = placer().take(index) if pin is None else placer().take_on(index, pin.hosts)
        if pin is not None and target is None:
            why = pin.reason(why_not_there(pin, volume_hosts, f"{' or '.join(pin.host_names)} cannot take it now"))
            if move is not None and move.lost:
                kept[index] = move.view.slot.id
            elif move is not None:
                removed.append(move.view)
            unplaced.append((index, f"{move.why}; {why}" if move is not None else why))
            continue
        if target is not None and move is not None and (waiting is not None or not released_host(host_of(move.view))):
            # the old container may still run: it goes first, its replacement waits until it is observed stopped
            removed.append(move.view)
            why = waiting or _waiting_for(move.view, host_of(move.view))
            unplaced.append((index, f"{move.why}; {why}"))
        elif target is not None:
            if move is None:
                place.append(new_slot(index, target))
            else:
                replace.append((move.view.slot.id, new_slot(index, target)))
        elif move is None:
            unplaced.append((index, placer().reason()))
        else:
            if move.lost:
                kept[index] = move.view.slot.id
            else:
                removed.append(move.view)
            unplaced.append((index, f"{move.why}, and no active host can take it: {placer().reason()}"))

    removed.sort(key=lambda v: (-v.slot.index, v.slot.id))
    return Plan(
        place=tuple(place),
        remove=tuple(v.slot.id for v in removed),
        replace=tuple(replace),
        update=tuple(updated[i] for i in sorted(updated)),
        keep=tuple(kept[i] for i in sorted(kept)),
        unplaced=tuple(unplaced),
    )
