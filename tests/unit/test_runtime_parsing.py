"""DockerEngine without an engine: Docker's loose answers become stable ObservedContainers; outages are Unavailable."""

from __future__ import annotations

import pytest

from corral.model.errors import Unavailable
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine, _parse_time, is_state_action, platform_facts

ROW = {
    "Id": "abc",
    "Names": ["/web-1"],
    "Image": "corral/busybox:latest",
    "State": "exited",
    "Status": "Exited (137) 5 minutes ago",
    "Labels": {labels.ENVIRONMENT: "env-1"},
    "Created": 1700000000,
}


def test_list_rows_become_observed_containers_with_stable_status() -> None:
    container = DockerEngine("unix:///nowhere.sock")._from_list(ROW)
    assert container.name == "web-1"
    assert container.state == "exited"
    assert container.status == "Exited (137)"
    assert container.exit_code == 137
    assert container.created == 1700000000.0
    assert container.managed


def test_running_rows_carry_health_and_no_exit_code() -> None:
    row = {**ROW, "State": "running", "Status": "Up 3 minutes (health: starting)"}
    container = DockerEngine("unix:///nowhere.sock")._from_list(row)
    assert (container.status, container.exit_code) == ("Up (starting)", None)


def test_inspect_data_becomes_an_observed_container() -> None:
    data = {
        "Id": "abc",
        "Name": "/web-1",
        "Created": "2026-11-28T16:59:17.630897941Z",
        "RestartCount": 4,
        "State": {"Status": "running", "ExitCode": 0, "Health": {"Status": "healthy"}},
        "Config": {"Image": "corral/busybox:latest", "Labels": {"a": "b"}},
        "HostConfig": {"RestartPolicy": {"Name": "always"}},
    }
    container = DockerEngine("unix:///nowhere.sock")._from_inspect(data)
    assert (container.name, container.state, container.status) == ("web-1", "running", "Up (healthy)")
    assert (container.exit_code, container.restart_count, container.labels) == (None, 4, {"a": "b"})
    assert container.created == 1795885157.0  # whole seconds, like the list API


@pytest.mark.parametrize(
    ("raw", "expected"), [(12, 12.0), ("0001-01-01T00:00:00Z", 0.0), ("garbage", 0.0), (None, 0.0)]
)
def test_parse_time_tolerates_odd_values(raw: object, expected: float) -> None:
    assert _parse_time(raw) == expected


def test_state_actions() -> None:
    assert is_state_action("die")
    assert is_state_action("health_status: unhealthy")
    assert not is_state_action("exec_start: sh")
    assert not is_state_action("attach")


def test_an_absent_engine_is_unavailable_not_a_crash() -> None:
    engine = DockerEngine("unix:///nonexistent/docker.sock", timeout=2)
    assert engine.ping() is False
    with pytest.raises(Unavailable, match=r"unix:///nonexistent/docker\.sock"):
        engine.facts()
    with pytest.raises(Unavailable):
        engine.containers()
    engine.close()


def test_platform_facts_describe_this_machine() -> None:
    facts = platform_facts()
    assert facts.hostname and facts.kernel
    assert facts.cpus > 0 and facts.memory_bytes > 0
