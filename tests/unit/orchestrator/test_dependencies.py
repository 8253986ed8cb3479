"""depends_on conditions: when a dependent may start, and what its wait says (orchestrator/dependencies.py)."""

from __future__ import annotations

from corral.model.entities import ObservedContainer
from corral.orchestrator.dependencies import COMPLETED, HEALTHY, STARTED, Dependency, dependencies_wait


def container(state: str, *, health: str = "", exit_code: int | None = None, name: str = "s-db-1") -> ObservedContainer:
    return ObservedContainer(docker_id="x", name=name, image="i", state=state, exit_code=exit_code, health=health)


def test_started_waits_for_every_container_to_run() -> None:
    assert dependencies_wait([Dependency("db", STARTED, 1, [container("running")])]) is None
    assert dependencies_wait([Dependency("db", STARTED, 2, [container("running")])]) == (
        "waiting for db to start: 1 of 2 containers placed"
    )
    assert dependencies_wait([Dependency("db", STARTED, 1, [None])]) == (
        "waiting for db to start: a container is not created yet"
    )
    assert dependencies_wait([Dependency("db", STARTED, 1, [container("created")])]) == (
        "waiting for db to start: s-db-1 is created"
    )


def test_healthy_needs_the_health_check_to_pass() -> None:
    running = Dependency("db", HEALTHY, 1, [container("running", health="initializing")])
    assert dependencies_wait([running]) == "waiting for db to be healthy: s-db-1 is initializing"
    unchecked = Dependency("db", HEALTHY, 1, [container("running")])
    assert "running without a health check" in (dependencies_wait([unchecked]) or "")
    assert dependencies_wait([Dependency("db", HEALTHY, 1, [container("running", health="healthy")])]) is None
    # a healthy container that has stopped since is no longer healthy
    assert dependencies_wait([Dependency("db", HEALTHY, 1, [container("exited", health="healthy", exit_code=0)])])


def test_completed_needs_a_clean_end_and_says_a_failure() -> None:
    assert dependencies_wait([Dependency("m", COMPLETED, 1, [container("exited", exit_code=0)])]) is None
    assert dependencies_wait([Dependency("m", COMPLETED, 1, [container("running", name="s-m-1")])]) == (
        "waiting for m to complete successfully: s-m-1 is running"
    )
    failed = Dependency("m", COMPLETED, 1, [container("exited", exit_code=3, name="s-m-1")])
    assert dependencies_wait([failed]) == "waiting for m to complete successfully: s-m-1 exited with code 3"


def test_a_run_once_dependency_counts_as_started_after_a_clean_end() -> None:
    ended = [container("exited", exit_code=0)]
    assert dependencies_wait([Dependency("job", STARTED, 1, ended, runs_once=True)]) is None
    assert dependencies_wait([Dependency("job", STARTED, 1, ended)]) == "waiting for job to start: s-db-1 is exited"


def test_every_unmet_dependency_is_named() -> None:
    wait = dependencies_wait(
        [
            Dependency("db", HEALTHY, 1, [container("running", health="unhealthy")]),
            Dependency("cache", STARTED, 1, [container("running", name="s-cache-1")]),
            Dependency("m", COMPLETED, 1, [None]),
        ]
    )
    assert wait == (
        "waiting for db to be healthy: s-db-1 is unhealthy; m to complete successfully: a container is not created yet"
    )
