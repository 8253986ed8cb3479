"""How one orchestrator pass shares a host load between the services of an environment.

Why a module of its own: the server's pass (environment_plan.py) and the plan preview (preview.py) walk an
environment's services the same way over one `HostLoad.shared`; the rules of what each service leaves claimed in
it for the next ones live here once, so that a preview places containers where the pass then does.
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.model.errors import InvalidInput
from corral.model.stack import ServiceSpec
from corral.orchestrator.plans import Plan
from corral.orchestrator.rules import NO_RULES, Rules, parse_rules
from corral.orchestrator.scheduling import HostLoad, SlotView


def rules_of(spec: ServiceSpec, stack: str) -> Rules:
    """The service's scheduling rules; malformed labels count as none (the reconcile reports them)."""
    try:
        return parse_rules(spec.launch.labels, stack=stack, service=spec.name)
    except InvalidInput:
        return NO_RULES


def claim_rest(
    load: HostLoad, spec: ServiceSpec, before: Iterable[SlotView], retired: frozenset[str], plan: Plan
) -> None:
    """After a service's reconcile on the shared load, make the load hold what the next services must see of it,
    as its slot views would: its retired (not running) slots, and the random host ports of the slots it kept."""
    surviving = {*plan.keep, *(slot.id for slot in plan.update)}
    fixed = spec.launch.published_ports()
    for view in before:
        if view.slot.id in retired:
            load.claim_view(view)
        elif view.slot.id in surviving and view.slot.host_id in load.hosts:
            extra = view.published_ports - fixed
            if extra:
                load.used[view.slot.host_id].update(extra)
