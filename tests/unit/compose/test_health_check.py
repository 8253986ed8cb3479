"""Health checks from rancher-compose and compose: validation with the file, service and field, units, defaults."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.health import HealthCheck, merge_health_check, normalise_request_line

from .helpers import RC, error, stack

COMPOSE = "version: '2'\nservices:\n  web: {image: nginx}\n"


def rancher(check: str) -> str:
    return "version: '2'\nservices:\n  web:\n    health_check:\n" + "".join(
        f"      {line}\n" for line in check.splitlines()
    )


def test_rancher_defaults_are_rancher_s() -> None:
    web = stack(COMPOSE, rancher("port: 80")).service("web")
    assert web is not None
    assert web.health() == HealthCheck(port=80)
    assert (web.health().interval_ms, web.health().strategy) == (2000, "recreate")  # type: ignore[union-attr]
    assert web.health().probes  # type: ignore[union-attr]


def test_full_rancher_check_and_quorum() -> None:
    web = stack(
        COMPOSE,
        rancher(
            "port: '8080'\nrequest_line: /hc\ninterval: 500\nresponse_timeout: 400\nhealthy_threshold: 1\n"
            "unhealthy_threshold: 2\ninitializing_timeout: 3000\nreinitializing_timeout: 4000\n"
            "strategy: recreateOnQuorum\nrecreate_on_quorum_strategy_config: {quorum: '2'}"
        ),
    ).service("web")
    assert web is not None
    assert web.health() == HealthCheck(
        port=8080,
        request_line="GET /hc HTTP/1.0",
        interval_ms=500,
        response_timeout_ms=400,
        healthy_threshold=1,
        unhealthy_threshold=2,
        initializing_timeout_ms=3000,
        reinitializing_timeout_ms=4000,
        strategy="recreateOnQuorum",
        quorum=2,
    )


def test_compose_seconds_become_milliseconds_and_rancher_wins() -> None:
    compose = {"test": ["CMD", "true"], "interval": 1.5, "timeout": 0.25, "retries": 5, "start_period": 10.0}
    assert merge_health_check(compose, None) == HealthCheck(
        interval_ms=1500,
        response_timeout_ms=250,
        unhealthy_threshold=5,
        initializing_timeout_ms=10000,
        command=True,
    )
    merged = merge_health_check(compose, {"port": 80, "interval": 700})
    assert merged is not None
    assert (merged.port, merged.interval_ms, merged.response_timeout_ms, merged.command) == (80, 700, 250, True)
    assert merge_health_check({"test": ["NONE"]}, None) is None
    assert merge_health_check(None, None) is None


@pytest.mark.parametrize(
    ("check", "field", "reason"),
    [
        ("request_line: GET /", "port", "is required"),
        ("port: 80\nstrategy: sometimes", "strategy", "must be one of none, recreate, recreateOnQuorum"),
        ("port: 80\nstrategy: recreateOnQuorum", "recreate_on_quorum_strategy_config", "needs"),
        (
            "port: 80\nstrategy: recreateOnQuorum\nrecreate_on_quorum_strategy_config: {quorum: 0}",
            "recreate_on_quorum_strategy_config.quorum",
            "must be at least 1",
        ),
        ("port: 80\ninterval: 0", "interval", "must be between 1 and"),
        ("port: 80\nunhealthy_threshold: 0", "unhealthy_threshold", "must be between 1 and"),
        ("port: 80\nrequest_line: GET a b c", "request_line", "is not a request line"),
        ("port: 80\nintervall: 5", "intervall", "unknown health_check key 'intervall'"),
        ("port: 99999", "port", "must be between 1 and 65535"),
    ],
)
def test_errors_name_file_service_and_field(check: str, field: str, reason: str) -> None:
    exc = error(COMPOSE, rancher(check))
    assert exc.field == f"{RC}:services.web.health_check.{field}"
    assert exc.message.startswith(f"{RC}: service web: health_check.")
    assert reason in exc.message


@pytest.mark.parametrize(
    ("line", "full"),
    [
        ("", ""),
        ("   ", ""),
        ("/hc", "GET /hc HTTP/1.0"),
        ("GET /hc", "GET /hc HTTP/1.0"),
        ("HEAD /hc HTTP/1.1", "HEAD /hc HTTP/1.1"),
        ("/hc HTTP/1.1", "GET /hc HTTP/1.1"),
    ],
)
def test_request_lines(line: str, full: str) -> None:
    assert normalise_request_line(line) == full


@given(st.text(max_size=40))
def test_request_line_is_normalised_once_or_refused(line: str) -> None:
    try:
        full = normalise_request_line(line)
    except InvalidInput as exc:
        assert exc.field == "request_line"
    else:
        assert normalise_request_line(full) == full


@given(
    st.builds(
        HealthCheck,
        port=st.none() | st.integers(1, 65535),
        interval_ms=st.integers(1, 10**6),
        strategy=st.sampled_from(["none", "recreate", "recreateOnQuorum"]),
        quorum=st.integers(1, 9),
        command=st.booleans(),
    )
)
def test_stored_form_round_trips(check: HealthCheck) -> None:
    assert HealthCheck.from_dict(check.to_dict()) == check
