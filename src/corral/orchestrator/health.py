"""What the orchestrator does about unhealthy containers: the service's health-check strategy, with a backoff.

Why pure and separate: the reconciler (`reconciling.py`) asks this module which of a service's slots to replace
and moves them like slots of a lost host (a new slot id for the same index; the old slot leaves the desired set, so
its agent removes the container). The rules are small but easy to get wrong in a loop, so they are table- and
property-tested on their own:
- `none`: an unhealthy container stays (the service shows degraded);
- `recreate`: every unhealthy container is replaced;
- `recreateOnQuorum`: unhealthy containers are replaced only while at least `quorum` containers of the service are
  healthy (replacing them would not lower that count);
- never in a hot loop: each index remembers how many health replacements it had in a row (`Replacement`, kept by
  the server between passes) and waits `backoff_seconds(count)` after the last one; a healthy container on the
  index ends the run. The first replacement is immediate.
A container that never became healthy counts as unhealthy once the agent says so (after `initializing_timeout`),
so it is replaced too — unlike Rancher, where such a container stayed "initializing" forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.model.health import HEALTHY, UNHEALTHY, HealthCheck
from corral.orchestrator.plans import Plan
from corral.orchestrator.scheduling import SlotView

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class Replacement:
    """Health replacements of one service index in a row, and when the last one was planned."""

    count: int
    at: float


def backoff_seconds(count: int) -> float:
    """How long an index waits after its `count`-th health replacement in a row before the next one."""
    if count <= 0:
        return 0.0
    return float(min(BACKOFF_BASE_SECONDS * 2 ** min(count - 1, 16), BACKOFF_MAX_SECONDS))


@dataclass(frozen=True)
class HealthDecision:
    replace: dict[int, str]  # index -> why its slot is replaced
    waiting: dict[int, str]  # index -> why an unhealthy slot is not replaced (yet)


def health_replacements(
    check: HealthCheck | None,
    slots: Mapping[int, SlotView],
    *,
    now: float,
    history: Mapping[int, Replacement],
) -> HealthDecision:
    """Which of a service's slots (one per index) to replace because their containers are unhealthy."""
    unhealthy = sorted(i for i, v in slots.items() if v.health == UNHEALTHY)
    if check is None or check.strategy == "none" or not unhealthy:
        return HealthDecision({}, {})
    if check.strategy == "recreateOnQuorum":
        healthy = sum(1 for v in slots.values() if v.health == HEALTHY)
        if healthy < check.quorum:
            why = f"unhealthy, not replaced: {healthy} healthy, recreateOnQuorum needs {check.quorum}"
            return HealthDecision({}, dict.fromkeys(unhealthy, why))
    replace: dict[int, str] = {}
    waiting: dict[int, str] = {}
    for index in unhealthy:
        last = history.get(index)
        if last is not None and now < last.at + backoff_seconds(last.count):
            wait = last.at + backoff_seconds(last.count) - now
            waiting[index] = f"unhealthy, replaced {last.count} times in a row: next replacement in {wait:.0f} s"
        else:
            replace[index] = "its container is unhealthy"
    return HealthDecision(replace, waiting)


def record_replacements(
    history: Mapping[int, Replacement], slots: Sequence[SlotView], plan: Plan, now: float
) -> dict[int, Replacement]:
    """The history after `plan`: health replacements counted, indexes with a healthy container forgotten."""
    by_id = {v.slot.id: v for v in slots}
    result = {i: r for i, r in history.items() if not any(v.slot.index == i and v.health == HEALTHY for v in slots)}
    # an unhealthy slot replaced at once (its host is lost) or removed first (its replacement waits for it to stop)
    for old_id in [*(old for old, _ in plan.replace), *plan.remove]:
        old = by_id.get(old_id)
        if old is not None and old.health == UNHEALTHY:
            previous = result.get(old.slot.index)
            result[old.slot.index] = Replacement((previous.count if previous else 0) + 1, now)
    return result
