"""The pure parts of `ps --filter`, `port`, `wait`, `down` and `logs --since` (cli/filters.py, cli/ops.py, the
agent's logs request)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.agent.streams import LogsRequest, parse_logs
from corral.cli.filters import parse_filters
from corral.cli.ops import parse_private, parse_published, remaining, unsettled
from corral.cli.stats import human_bytes
from corral.model.errors import InvalidInput

WEB_1 = {"id": "c1", "name": "app-web-1", "stack": "app", "stack_id": "s1", "service": "web", "service_id": "v1"}
WEB_1 |= {"host": "h1", "host_id": "hid1", "state": "running"}


def test_filters_go_to_the_server_when_it_has_them() -> None:
    filters = parse_filters(["service=app/web", "host=h1", "state=running", "name=web"])
    assert filters.server_params() == {"stack": "app", "service": "web", "host": "h1", "state": "running"}
    assert filters.matches(WEB_1)
    assert not filters.matches({**WEB_1, "name": "app-db-1"})
    twice = parse_filters(["state=running", "state=exited", "stack=app"])
    assert twice.server_params() == {"stack": "app"}  # a key given twice is "either": applied by the CLI
    assert twice.matches(WEB_1) and twice.matches({**WEB_1, "state": "exited"})
    assert not twice.matches({**WEB_1, "state": "created"})
    clash = parse_filters(["stack=other", "service=app/web"])
    assert clash.server_params() == {"stack": "other"} and not clash.matches(WEB_1)
    assert parse_filters(["host=hid1"]).matches(WEB_1) and parse_filters(["service=v1"]).matches(WEB_1)
    assert not parse_filters([])


@pytest.mark.parametrize(
    ("given", "message"),
    [("colour=red", "unknown key 'colour'"), ("state", "give key=value"), ("state=", "give key=value")],
)
def test_bad_filters_name_the_keys(given: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_filters([given])
    assert message in raised.value.message and "stack, service, host, state, name" in raised.value.message


@given(
    st.sampled_from(["0.0.0.0", "10.1.2.3", "::1", "edge"]),
    st.integers(1, 65535),
    st.integers(1, 65535),
    st.sampled_from(["tcp", "udp"]),
)
def test_published_ports_read_back(address: str, host_port: int, inside: int, protocol: str) -> None:
    assert parse_published(f"{address}:{host_port}->{inside}/{protocol}") == (address, host_port, inside, protocol)


def test_private_ports() -> None:
    assert parse_private("80") == (80, "tcp") and parse_private("53/UDP") == (53, "udp")
    for bad in ("http", "0", "70000", "80/icmp", ""):
        with pytest.raises(InvalidInput):
            parse_private(bad)


def _service(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "scale": len(containers),
        "state": "active",
        "reason": "",
        "config_hash": "h",
        **extra,
        "containers": containers,
    }


def _container(name: str, **extra: Any) -> dict[str, Any]:
    base = {"id": name, "name": name, "state": "running", "desired": "running", "health": "", "reason": ""}
    return {**base, "config_hash": "h", "up_to_date": True, **extra}


def test_a_service_is_settled_when_every_index_runs_its_configuration_healthy() -> None:
    assert unsettled(_service([_container("a"), _container("b", health="healthy")])) == []
    assert unsettled(_service([_container("a", state="exited", exit_code=0)])) == []  # ran once, as wanted
    assert unsettled(_service([_container("a", desired="stopped", state="exited", exit_code=137)])) == []
    problems = unsettled(
        _service(
            [
                _container("a", state="exited", exit_code=1, reason="exit 1"),
                _container("b", health="unhealthy", health_reason="3 checks failed"),
                _container("c", up_to_date=False),
                _container("d", desired="stopped"),
            ],
            state="degraded",
            scale=5,
        )
    )
    assert problems == [
        "4/5 containers created",
        "a exited: exit 1",
        "b unhealthy: 3 checks failed",
        "c not on its service's current configuration yet",
        "d running, to be stopped",
    ]
    unplaced = _service([], scale=2, reason="#1-#2: no host", unplaced=[{"indexes": [1, 2], "reason": "no host"}])
    assert unsettled(unplaced) == ["#1-#2: no host", "0/2 containers created"]


def test_down_waits_for_the_containers_the_hosts_still_report() -> None:
    placed = {"c1": {"name": "app-web-1", "host_id": "h1"}, "c2": {"name": "app-db-1", "host_id": "h2"}}
    label = "io.corral.container"
    reported = {"h1": [{"labels": {label: "c1"}}, {"labels": {label: "other"}}, {"labels": {}}], "h2": []}
    assert remaining(placed, reported) == ["app-web-1"]
    assert remaining(placed, {"h1": [], "h2": [{"labels": {label: "c1"}}]}) == []  # not where it was placed
    assert remaining(placed, {}) == []


def test_a_logs_request_takes_since() -> None:
    base = {"request_id": "r1", "docker_id": "abc"}
    assert parse_logs({**base, "since": 1700000000.5}) == LogsRequest("r1", "abc", since=1700000000.5)
    assert parse_logs(base).since is None
    for bad in (-1, "yesterday", True):
        with pytest.raises(InvalidInput) as raised:
            parse_logs({**base, "since": bad})
        assert raised.value.field == "since"


def test_sizes_read_as_docker_stats_shows_them() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 3 << 20, 5 << 40)] == [
        "0B",
        "1023B",
        "1.50KiB",
        "3.00MiB",
        "5.00TiB",
    ]
