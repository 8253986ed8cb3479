"""The agent's health checks: the pure state machine (tables and Hypothesis), real probes against local sockets,
and the monitor's bookkeeping (which containers it probes, what it reports) with a scripted probe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.agent.health import (
    HealthMonitor,
    HealthState,
    after_probe,
    after_tick,
    http_status_ok,
    initial_state,
    probe,
)
from corral.model.entities import ObservedContainer
from corral.model.health import HEALTH_STATES, HEALTHY, INITIALIZING, REINITIALIZING, UNHEALTHY, HealthCheck
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig

CHECK = HealthCheck(
    port=80, healthy_threshold=2, unhealthy_threshold=3, initializing_timeout_ms=10_000, reinitializing_timeout_ms=5000
)


def run(check: HealthCheck, steps: list[bool], start: float = 0.0) -> HealthState:
    state = initial_state(start)
    for i, ok in enumerate(steps):
        state = after_probe(check, state, ok, "boom", start + i)
    return state


def test_initializing_becomes_healthy_after_the_threshold() -> None:
    assert run(CHECK, [True]).status == INITIALIZING
    assert run(CHECK, [True, True]).status == HEALTHY
    assert run(CHECK, [True, False, True]).status == INITIALIZING  # in a row


def test_failures_while_initializing_do_not_make_it_unhealthy_before_the_timeout() -> None:
    state = run(CHECK, [False] * 9)
    assert state.status == INITIALIZING
    assert after_tick(CHECK, state, 9.9).status == INITIALIZING
    late = after_tick(CHECK, state, 10.0)
    assert late.status == UNHEALTHY
    assert late.reason == "no successful check within 10 s after start (last check: boom)"


def test_healthy_turns_unhealthy_after_the_threshold_and_back() -> None:
    state = run(CHECK, [True, True, False, False])
    assert state.reported == (HEALTHY, "")
    state = after_probe(CHECK, state, False, "GET / on 10.0.0.2:80: HTTP 404", 5)
    assert state.reported == (UNHEALTHY, "3 checks in a row failed: GET / on 10.0.0.2:80: HTTP 404")
    state = after_probe(CHECK, state, False, "other", 6)
    assert state.reason == "3 checks in a row failed: GET / on 10.0.0.2:80: HTTP 404"  # no report per failure
    state = after_probe(CHECK, state, True, "", 7)
    assert state.status == UNHEALTHY
    assert after_probe(CHECK, state, True, "", 8).reported == (HEALTHY, "")


def test_a_restart_after_being_healthy_reinitializes_with_its_own_timeout() -> None:
    healthy = run(CHECK, [True, True])
    restarted = initial_state(100.0, healthy)
    assert restarted.status == REINITIALIZING
    assert initial_state(100.0, run(CHECK, [False])).status == INITIALIZING
    assert after_tick(CHECK, restarted, 104.9).status == REINITIALIZING
    timed_out = after_tick(CHECK, restarted, 105.0)
    assert timed_out.reported == (UNHEALTHY, "no successful check within 5 s after a restart")
    assert after_probe(CHECK, after_probe(CHECK, restarted, True, "", 101), True, "", 102).status == HEALTHY


Event = tuple[str, bool, float]  # ("probe", ok, dt) or ("tick", _, dt) or ("restart", _, dt)


@given(
    healthy_threshold=st.integers(1, 4),
    unhealthy_threshold=st.integers(1, 4),
    events=st.lists(
        st.tuples(st.sampled_from(["probe", "tick", "restart"]), st.booleans(), st.floats(0, 3)), max_size=60
    ),
)
def test_state_machine_properties(healthy_threshold: int, unhealthy_threshold: int, events: list[Event]) -> None:
    check = HealthCheck(
        port=80,
        healthy_threshold=healthy_threshold,
        unhealthy_threshold=unhealthy_threshold,
        initializing_timeout_ms=4000,
        reinitializing_timeout_ms=2000,
    )
    now = 0.0
    state = initial_state(now)
    run_ok = run_fail = 0  # the current runs of successes and failures
    for kind, ok, dt in events:
        now += dt
        before = state
        if kind == "restart":
            state = initial_state(now, state)
            run_ok = run_fail = 0
            assert state.status == (REINITIALIZING if before.ever_healthy else INITIALIZING)
        elif kind == "tick":
            state = after_tick(check, state, now)
            if before.status == INITIALIZING:
                assert (state.status == UNHEALTHY) == (now - before.since >= 4.0)
            elif before.status != REINITIALIZING:
                assert state == before
        else:
            state = after_probe(check, state, ok, "x", now)
            run_ok, run_fail = (run_ok + 1, 0) if ok else (0, run_fail + 1)
            if state.status == HEALTHY and before.status != HEALTHY:
                assert run_ok >= healthy_threshold
            if before.status == HEALTHY and state.status != HEALTHY:
                assert state.status == UNHEALTHY and run_fail >= unhealthy_threshold
            if before.status != HEALTHY and not ok:
                assert state.status == before.status  # only a timeout ends (re)initializing without a success
        assert state.status in HEALTH_STATES
        assert (state.reason == "") == (state.status != UNHEALTHY)
        assert state.ever_healthy >= before.ever_healthy or kind == "restart"


@pytest.mark.parametrize(
    ("line", "ok", "said"),
    [
        (b"HTTP/1.0 200 OK\r\n", True, "HTTP 200"),
        (b"HTTP/1.1 302 Found\r\n", True, "HTTP 302"),
        (b"HTTP/1.0 404 Not Found\r\n", False, "HTTP 404"),
        (b"HTTP/1.0 500 Oops\r\n", False, "HTTP 500"),
        (b"", False, "not an HTTP response ('nothing')"),
        (b"SSH-2.0-OpenSSH\r\n", False, "not an HTTP response ('SSH-2.0-OpenSSH')"),
    ],
)
def test_http_status(line: bytes, ok: bool, said: str) -> None:
    assert http_status_ok(line) == (ok, said)


@contextlib.asynccontextmanager
async def server(answer: bytes | None) -> AsyncIterator[int]:
    """A local TCP server that answers every request with `answer` (None: reads and never answers)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        if answer is None:
            await asyncio.sleep(10)
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def test_real_probes() -> None:
    async def main() -> None:
        async with server(b"HTTP/1.0 200 OK\r\n\r\nhi") as port:
            assert await probe("127.0.0.1", port, "", 1.0) == (True, f"connected to 127.0.0.1:{port}")
            assert await probe("127.0.0.1", port, "GET /hc HTTP/1.0", 1.0) == (
                True,
                f"/hc on 127.0.0.1:{port}: HTTP 200",
            )
        async with server(b"HTTP/1.0 404 Not Found\r\n\r\n") as port:
            assert await probe("127.0.0.1", port, "GET /x HTTP/1.0", 1.0) == (
                False,
                f"/x on 127.0.0.1:{port}: HTTP 404",
            )
        async with server(None) as port:
            ok, said = await probe("127.0.0.1", port, "GET / HTTP/1.0", 0.2)
            assert (ok, said) == (False, f"no answer from 127.0.0.1:{port} within 200 ms")
        ok, said = await probe("127.0.0.1", port, "", 1.0)  # closed by now
        assert not ok and said.startswith(f"cannot connect to 127.0.0.1:{port}: ")

    asyncio.run(main())


def desired(slot_id: str, check: HealthCheck | None, network_mode: str = "managed") -> DesiredContainer:
    slot = ContainerSlot(slot_id, "e1", "app", "web", 1, "h1", "hash")
    return DesiredContainer(slot, LaunchConfig(image="x", network_mode=network_mode), health_check=check)


def container(docker_id: str, slot_id: str, state: str = "running", ip: str = "10.0.0.2") -> ObservedContainer:
    return ObservedContainer(
        docker_id, f"app-web-{docker_id}", "x", state, labels={"io.corral.container": slot_id}, ip=ip
    )


def test_monitor_probes_checked_running_containers_and_reports_changes() -> None:
    fast = HealthCheck(port=80, interval_ms=10, healthy_threshold=2, unhealthy_threshold=1)
    probed: list[tuple[str, int]] = []
    answers = {"10.0.0.2": True, "127.0.0.1": False}

    async def fake_probe(address: str, port: int, request_line: str, timeout: float) -> tuple[bool, str]:
        probed.append((address, port))
        return answers.get(address, False), f"answer of {address}"

    async def main() -> None:
        monitor = HealthMonitor(fake_probe)
        reports: list[tuple[str, str, str]] = []

        async def listener(c: ObservedContainer) -> None:
            reports.append((c.docker_id, c.health, c.health_reason))

        listen: Callable[[ObservedContainer], Awaitable[None]] = listener
        monitor.attach(listen)
        monitor.set_desired([desired("s1", fast), desired("s2", None), desired("s3", fast, "host")])
        monitor.observe(
            [container("d1", "s1"), container("d2", "s2"), container("d3", "s3"), container("d4", "s1", "exited")],
            full=True,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(monitor.run(stop))
        for _ in range(200):
            if ("d1", HEALTHY, "") in reports:
                break
            await asyncio.sleep(0.01)
        assert ("d1", HEALTHY, "") in reports
        assert {a for a, _ in probed} == {"10.0.0.2", "127.0.0.1"}  # d2 has no check, d4 is not running
        assert monitor.annotate(container("d1", "s1")).health == HEALTHY
        assert monitor.annotate(container("d2", "s2")).health == ""
        # d1 stops and starts again: reinitializing (it was healthy before)
        monitor.observe([container("d1", "s1", "exited")])
        assert monitor.annotate(container("d1", "s1", "exited")).health == ""
        monitor.observe([container("d1", "s1")])
        assert monitor.annotate(container("d1", "s1")).health == REINITIALIZING
        # the slot loses its check: probing stops
        monitor.set_desired([desired("s1", None)])
        assert monitor.annotate(container("d1", "s1")).health == ""
        stop.set()
        await task

    asyncio.run(main())
