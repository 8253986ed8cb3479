"""Convergence of a deployment unit on one host: targets of `volumes_from` / `network_mode: service:` come first,
and a container is recreated when a container it refers to is (or was) recreated.

Why a post-pass over the planner's actions: `plan_convergence` decides per slot; references are between slots
(of the same stack and index on this host). This pass (pure) reorders creates, recreates and starts so that a
target is built before the containers that refer to it, and turns a dependent's "nothing to do" or "start" into a
recreate when its target is rebuilt this round or when the target id recorded in its `io.corral.unit.targets`
label is no longer the target's container (Docker binds a shared network namespace or volumes at create time).
A dependent whose target does not exist at create time fails with `WaitingForSidekick` (runtime/units.py), which
the converger reports as the slot's reason and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from corral.agent.actions import Action, ActionKind
from corral.model.entities import ObservedContainer
from corral.model.stack import DesiredContainer
from corral.model.units import unit_references
from corral.runtime import labels
from corral.runtime.units import find_target, recorded_targets

_BUILDS = frozenset({"create", "recreate"})
_STATE_RANK = {"running": 3, "restarting": 2, "paused": 2, "created": 1, "exited": 1}


def _depths(wanted: dict[str, DesiredContainer]) -> dict[str, int]:
    """How deep each desired slot sits in its unit's reference chains (0: refers to nothing on this host)."""
    by_key = {(d.slot.environment_id, d.slot.stack, d.slot.service, d.slot.index): d for d in wanted.values()}
    depth: dict[str, int] = {}

    def visit(slot_id: str, seen: frozenset[str]) -> int:
        if slot_id in depth:
            return depth[slot_id]
        want = wanted[slot_id]
        s = want.slot
        result = 0
        for service in unit_references(want.launch):
            target = by_key.get((s.environment_id, s.stack, service, s.index))
            if target is not None and target.slot.id not in seen:
                result = max(result, 1 + visit(target.slot.id, seen | {slot_id}))
        depth[slot_id] = result
        return result

    for slot_id in wanted:
        visit(slot_id, frozenset())
    return depth


def _current(observed: Iterable[ObservedContainer], want: DesiredContainer) -> ObservedContainer | None:
    copies = [c for c in observed if c.labels.get(labels.CONTAINER) == want.slot.id]
    return max(
        copies,
        key=lambda c: (
            c.labels.get(labels.CONFIG_HASH) == want.slot.config_hash,
            _STATE_RANK.get(c.state, 0),
            c.created,
            c.docker_id,
        ),
        default=None,
    )


def arrange_unit_actions(
    actions: Sequence[Action], desired: Sequence[DesiredContainer], observed: Sequence[ObservedContainer]
) -> list[Action]:
    """The planner's actions with the unit rules applied (see the module docstring). Without references between
    the desired containers the actions come back unchanged."""
    wanted: dict[str, DesiredContainer] = {}
    for entry in desired:
        wanted.setdefault(entry.slot.id, entry)
    if not any(unit_references(d.launch) for d in wanted.values()):
        return list(actions)
    depth = _depths(wanted)
    by_key = {(d.slot.environment_id, d.slot.stack, d.slot.service, d.slot.index): d for d in wanted.values()}
    result = list(actions)
    built = {a.slot_id for a in result if a.kind in _BUILDS}
    for slot_id in sorted(wanted, key=lambda sid: depth[sid]):  # targets first, so a rebuild propagates down
        want = wanted[slot_id]
        if slot_id in built or not depth[slot_id]:
            continue
        current = _current(observed, want)
        if current is None:
            continue
        why = ""
        s = want.slot
        for service in unit_references(want.launch):
            target = by_key.get((s.environment_id, s.stack, service, s.index))
            if target is not None and target.slot.id in built:
                why = f"sidekick {service} is recreated"
                break
            found = find_target(observed, s, service)
            recorded = recorded_targets(current).get(service)
            if found is not None and recorded is not None and recorded != found.docker_id:
                why = f"sidekick {service} was recreated"
                break
        if why:
            result = [a for a in result if a.slot_id != slot_id or a.kind is ActionKind.REMOVE]
            result.append(Action(ActionKind.RECREATE, slot_id, why, current.docker_id, want, s.name))
            built.add(slot_id)

    order = {id(a): i for i, a in enumerate(result)}

    def key(action: Action) -> tuple[int, int, int]:
        return (depth.get(action.slot_id, 0), 0 if action.kind is ActionKind.RECREATE else 1, order[id(action)])

    early = (ActionKind.REMOVE, ActionKind.STOP)  # they free names, ports and namespaces
    first = [a for a in result if a.kind in early]
    builds = sorted((a for a in result if a.kind in _BUILDS), key=key)
    rest = sorted((a for a in result if a.kind not in _BUILDS and a.kind not in early), key=key)
    return [*first, *builds, *rest]
