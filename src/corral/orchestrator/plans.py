"""A reconcile plan with named buckets, and how to apply it to a list of slots.

Why a module of its own: both the scaled reconciler (`reconciling.py`) and the global one (`global_services.py`)
return a `Plan`, and the server and the tests apply it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.model.stack import ContainerSlot
from corral.orchestrator.scheduling import SlotView


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


def apply_plan(slots: Sequence[SlotView], plan: Plan) -> list[ContainerSlot]:
    """The service's slots after `plan`, sorted by (index, id). Ids the plan names but `slots` lacks are ignored."""
    dropped = set(plan.remove) | {old for old, _ in plan.replace}
    updates = {slot.id: slot for slot in plan.update}
    result = [updates.get(v.slot.id, v.slot) for v in slots if v.slot.id not in dropped]
    result.extend(plan.place)
    result.extend(new for _, new in plan.replace)
    return sorted(result, key=lambda s: (s.index, s.id))
