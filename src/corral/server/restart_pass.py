"""The orchestrator pass's part for restarts and rolling restarts: run the pure decision of
`orchestrator/restarts.py` for a `restarting` service and store its step (desired `running` and
`start_requested_at` of its slots, and the progress) in one transaction.

Why here, called from the upgrade pass: a restart is one more action of the same level-triggered engine
(server/upgrade_pass.py) — stored with the service, decided from the stored progress and what the agents report,
so a restarted server carries on; the agents act on the desired set they already understand.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from corral.model.entities import ObservedContainer
from corral.model.stack import Service, SlotRecord
from corral.orchestrator.restarts import RestartProgress, RestartSlot, decide_restart
from corral.store.stacks import StackStore

log = logging.getLogger("corral.restarts")


def restart_slot(record: SlotRecord, observed: ObservedContainer | None) -> RestartSlot:
    return RestartSlot(
        id=record.slot.id,
        name=record.slot.name,
        observed_state=observed.state if observed is not None else None,
        health=observed.health if observed is not None else "",
    )


def run_restart_pass(
    stacks: StackStore,
    service: Service,
    records: Sequence[SlotRecord],
    observed: dict[str, ObservedContainer],
    now: float,
) -> bool:
    """One pass of the service's restart; True when something was stored."""
    progress = RestartProgress.from_dict(service.upgrade.get("restart") or {})
    slots = [restart_slot(r, observed.get(r.slot.id)) for r in records if not r.retired]
    step = decide_restart(progress, slots, now)
    if step.gave_up:
        log.warning("%s/%s: %s", service.stack, service.name, step.reason)
    if step.finished:
        stacks.record_restart_step(service.id, progress=None, reason=step.reason, start=step.start)
        return True
    if step.progress == progress and step.reason == service.upgrade.get("reason", "") and not step.start:
        return False
    stacks.record_restart_step(service.id, progress=step.progress, reason=step.reason, stop=step.stop, start=step.start)
    return True
