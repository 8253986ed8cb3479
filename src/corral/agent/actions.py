"""What convergence does to one container: the planner's output and the executor's input.

Why its own module: the pure planner (`converge.plan_convergence`) and the unit rules that reorder its actions
(`units.arrange_unit_actions`) both speak it, and neither should import the other for a word.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from corral.model.stack import DesiredContainer


class ActionKind(enum.StrEnum):
    CREATE = "create"  # create `desired` (and start it if desired.running)
    START = "start"
    STOP = "stop"
    REMOVE = "remove"
    RECREATE = "recreate"  # remove `docker_id`, then create `desired` (and start it if desired.running)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    slot_id: str  # the io.corral.container label of the container concerned
    reason: str
    docker_id: str = ""  # the existing container (all kinds but CREATE)
    desired: DesiredContainer | None = None  # the desired entry of the slot (None when removing an undesired one)
    name: str = ""  # for log lines and messages
    automatic: bool = False  # a restart Corral decided itself (an exited container of a service kept at scale)

    @property
    def starts(self) -> bool:
        """Whether applying the action ends with a start."""
        if self.kind is ActionKind.START:
            return True
        return (
            self.kind in (ActionKind.CREATE, ActionKind.RECREATE) and self.desired is not None and self.desired.running
        )
