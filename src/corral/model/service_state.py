"""Every state a service (and a stack) can be in, and the pure rule that decides which one it is.

Why in the vocabulary: the API's views, the web pages and the orchestrator's upgrade and restart engine all speak
of these states; one enum keeps them from drifting apart as repeated strings, and the rule that turns what the
service wants and what its containers do into a state is a domain rule, not a view's business.

Two kinds of state: the *stored* ones (`Service.state`: `active`, or an action in progress: restarting,
upgrading, upgraded, upgrade-error, rolling-back, rollback-error) and the *observed* ones computed for `active`
services from their containers (inactive, activating, error, degraded). An action in progress wins over the
observed state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class ServiceState(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # scale 0, or every container stopped on purpose
    ACTIVATING = "activating"  # containers still being placed, created or started
    ERROR = "error"  # activating for longer than the deadline (the reason says why)
    DEGRADED = "degraded"  # every container runs, some is not healthy (Rancher's word)
    RESTARTING = "restarting"  # a (rolling) restart in progress (orchestrator/restarts.py)
    UPGRADING = "upgrading"  # a rolling upgrade in progress (orchestrator/upgrades.py)
    UPGRADED = "upgraded"  # waiting for confirm or rollback
    UPGRADE_ERROR = "upgrade-error"
    ROLLING_BACK = "rolling-back"
    ROLLBACK_ERROR = "rollback-error"


# an upgrade record exists (retired slots may)
UPGRADE_STATES = frozenset({ServiceState.UPGRADING, ServiceState.UPGRADED, ServiceState.UPGRADE_ERROR})
ROLLBACK_STATES = frozenset({ServiceState.ROLLING_BACK, ServiceState.ROLLBACK_ERROR})
STORED_STATES = frozenset({ServiceState.ACTIVE, ServiceState.RESTARTING, *UPGRADE_STATES, *ROLLBACK_STATES})
# transitional: something is being done to the service
BUSY_STATES = frozenset(
    {ServiceState.ACTIVATING, ServiceState.RESTARTING, ServiceState.UPGRADING, ServiceState.ROLLING_BACK}
)
ERROR_STATES = frozenset({ServiceState.ERROR, ServiceState.UPGRADE_ERROR, ServiceState.ROLLBACK_ERROR})


@dataclass(frozen=True)
class ServiceFacts:
    """What decides a service's state: its stored state and counts of its current (not retired) containers."""

    stored: str = ServiceState.ACTIVE
    desired: int = 0  # containers it should have (its scale; per matching host when global)
    is_global: bool = False
    placed: int = 0  # slots it has
    settled: int = 0  # containers that do what it wants (run, or ran once to a clean end)
    stopped: int = 0  # containers stopped on purpose and not running
    unplaced: bool = False  # some index cannot be placed (a reason is stored)
    overdue: bool = False  # some container is not running long after it was changed
    unhealthy: bool = False  # some running container fails its health check


def service_state(facts: ServiceFacts) -> ServiceState:
    if facts.stored != ServiceState.ACTIVE:
        return ServiceState(facts.stored)
    if facts.desired == 0 and not facts.is_global:
        return ServiceState.INACTIVE
    if facts.placed and facts.stopped == facts.placed == facts.desired:
        return ServiceState.INACTIVE
    if facts.settled + facts.stopped == facts.desired and facts.placed == facts.desired and not facts.unplaced:
        return ServiceState.DEGRADED if facts.unhealthy else ServiceState.ACTIVE
    return ServiceState.ERROR if facts.overdue else ServiceState.ACTIVATING


def stack_state(service_states: Iterable[str]) -> ServiceState:
    """A stack shows its most pressing service state: error, then activating, then any other action in progress
    (alphabetically), else inactive when every service is, else active."""
    states = {ServiceState(s) for s in service_states}
    busy = sorted(states - {ServiceState.ACTIVE, ServiceState.INACTIVE})
    for pressing in (ServiceState.ERROR, ServiceState.ACTIVATING):
        if pressing in busy:
            return pressing
    if busy:
        return busy[0]
    return ServiceState.INACTIVE if states == {ServiceState.INACTIVE} else ServiceState.ACTIVE
