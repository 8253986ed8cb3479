"""When a service may start: what each service it depends on must have reached (compose `depends_on` conditions).

Why pure and apart: the orchestration pass knows the observed containers, the reconciler only whether to hold new
containers back; the rule between them (service_started, service_healthy, service_completed_successfully, and
what the wait says while it lasts) is a decision over a snapshot, tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.model.entities import ObservedContainer

STARTED = "service_started"
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"


@dataclass(frozen=True)
class Dependency:
    """A service depended on, as the pass sees it: its scale and the observed container of each of its current
    slots (None: not reported yet)."""

    name: str
    condition: str  # STARTED, HEALTHY or COMPLETED
    scale: int
    containers: Sequence[ObservedContainer | None]
    runs_once: bool = False  # start_once / run_once: a clean end counts as started


def dependency_wait(dependency: Dependency) -> str | None:
    """None when the condition holds, else what the dependent waits for (e.g. "db to be healthy: r-db-1 is
    initializing")."""
    name, condition = dependency.name, dependency.condition
    goal = {HEALTHY: "to be healthy", COMPLETED: "to complete successfully"}.get(condition, "to start")
    if len(dependency.containers) < dependency.scale:
        placed = len(dependency.containers)
        return f"{name} {goal}: {placed} of {dependency.scale} containers placed"
    for container in dependency.containers:
        if container is None:
            return f"{name} {goal}: a container is not created yet"
        ended_cleanly = container.state == "exited" and container.exit_code == 0
        if condition == COMPLETED:
            if ended_cleanly:
                continue
            if container.state in ("exited", "dead"):
                return f"{name} {goal}: {container.name} exited with code {container.exit_code}"
            return f"{name} {goal}: {container.name} is {container.state}"
        if dependency.runs_once and ended_cleanly:
            continue
        if container.state != "running":
            return f"{name} {goal}: {container.name} is {container.state}"
        if condition == HEALTHY and container.health != "healthy":
            state = container.health or "running without a health check (add a healthcheck to it)"
            return f"{name} {goal}: {container.name} is {state}"
    return None


def dependencies_wait(dependencies: Sequence[Dependency]) -> str | None:
    """What a service waits for, every unmet dependency named; None when it may start."""
    waits = [wait for dependency in dependencies if (wait := dependency_wait(dependency)) is not None]
    return f"waiting for {'; '.join(waits)}" if waits else None
