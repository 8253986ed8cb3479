"""Logs and exec through the real agent process: the fake server (agent_harness.py) sends stream requests over a
real websocket, the agent answers with `output` messages and exactly one `end` per request, reading from real
containers on the root engine — while its heartbeats go on.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from corral.model import protocol
from tests.integration.agent_harness import (  # noqa: F401
    HEARTBEAT,
    FakeServer,
    StartAgent,
    Throwaways,
    fake_server_fixture,
    start_agent_fixture,
    state_dir_fixture,
    throwaways_fixture,
)
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST

pytestmark = pytest.mark.integration

TALK = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exec sleep 300"
TICK = "while sleep 0.05; do echo tick; done"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def connected_agent(fake_server: FakeServer, start_agent: StartAgent, state_dir: Path) -> None:
    start_agent(state_dir, DOCKER_HOST)
    fake_server.expect(protocol.SNAPSHOT)  # welcomed, and the engine answers


def wait_for_log(fake_server: FakeServer, docker_id: str, text: bytes) -> None:
    """The container's log holds `text` (containers write their first lines asynchronously)."""
    deadline = time.monotonic() + 10
    while True:
        result = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=docker_id))
        if text in result.stdout + result.stderr:
            return
        assert time.monotonic() < deadline, f"{text!r} never showed in the log of {docker_id}"
        time.sleep(0.05)


def test_logs_and_exec_through_the_agent(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, throwaways: Throwaways
) -> None:
    talker = throwaways.run(TALK)
    connected_agent(fake_server, start_agent, state_dir)
    wait_for_log(fake_server, talker, b"err2")

    # logs: every output, per stream, then one end.
    logs = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker, follow=False, tail=None))
    assert (logs.stdout, logs.stderr) == (b"out1\nout2\n", b"err1\nerr2\n")
    assert logs.end.data["exit_code"] is None and logs.end.data["error"] is None
    tail = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker, tail=0, timestamps=True))
    assert tail.messages == [tail.end]
    # since (UNIX time, with a fraction): nothing written after an hour from now, everything after 1970
    future = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker, since=time.time() + 3600))
    assert future.messages == [future.end] and future.end.data["error"] is None
    past = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker, since=1.5))
    assert (past.stdout, past.stderr) == (b"out1\nout2\n", b"err1\nerr2\n")

    # exec: output and the exit code.
    run = fake_server.request(protocol.EXEC, docker_id=talker, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    result = fake_server.await_end(run)
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")
    assert result.end.data == {"request_id": run, "exit_code": 3, "error": None}

    # An interactive exec: stdin, then eof.
    cat = fake_server.request(protocol.EXEC, docker_id=talker, cmd=["cat"], tty=False, interactive=True)
    fake_server.request(protocol.STDIN, request_id=cat, data=b64(b"hello\n"))
    fake_server.wait_output(cat, b"hello\n")
    fake_server.request(protocol.STDIN, request_id=cat, data=b64(b"bye"), eof=True)
    result = fake_server.await_end(cat)
    assert result.stdout == b"hello\nbye" and result.end.data["exit_code"] == 0

    # A terminal: resize, then read its size.
    tty = fake_server.request(
        protocol.EXEC, docker_id=talker, cmd=["sh", "-c", "read x; stty size"], tty=True, interactive=True
    )
    fake_server.request(protocol.RESIZE, request_id=tty, rows=42, cols=132)
    fake_server.request(protocol.STDIN, request_id=tty, data=b64(b"go\n"))
    result = fake_server.await_end(tty)
    assert b"42 132" in result.stdout and result.end.data["exit_code"] == 0

    # Failures end the request with a clear error.
    missing = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id="corral-test-no-such-container"))
    assert missing.end.data == {
        "request_id": missing.end.data["request_id"],
        "exit_code": None,
        "error": "container corral-test-no-such-container does not exist on this host",
    }
    bad = fake_server.await_end(fake_server.request(protocol.EXEC, docker_id=talker, cmd=[]))
    assert bad.end.data["error"] == "invalid exec request: cmd must be a non-empty list of strings"
    # Messages for requests that are not running are ignored quietly; the session goes on.
    fake_server.request(protocol.CANCEL, request_id="not-running")
    fake_server.request(protocol.STDIN, request_id="not-running", data=b64(b"x"))
    assert fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker)).stdout == b"out1\nout2\n"
    assert not [m for m in fake_server.history if m.type == protocol.ERROR]


def test_a_followed_log_streams_until_cancelled_while_heartbeats_go_on(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, throwaways: Throwaways
) -> None:
    ticker = throwaways.run(TICK)
    connected_agent(fake_server, start_agent, state_dir)

    follow = fake_server.request(protocol.LOGS, docker_id=ticker, follow=True, tail=0)
    slow = fake_server.request(protocol.EXEC, docker_id=ticker, cmd=["sh", "-c", "sleep 1.5; echo done"])
    fake_server.wait_output(follow, b"tick\n")
    beats_before = sum(m.type == protocol.HEARTBEAT for m in fake_server.history)
    time.sleep(8 * HEARTBEAT)
    beats = sum(m.type == protocol.HEARTBEAT for m in fake_server.history) - beats_before
    assert beats >= 5, f"only {beats} heartbeats in {8 * HEARTBEAT:.1f}s of streaming"
    assert fake_server.stream_output(follow).count(b"tick\n") >= 10

    fake_server.request(protocol.CANCEL, request_id=follow)
    cancelled = fake_server.await_end(follow)
    assert cancelled.end.data == {"request_id": follow, "exit_code": None, "error": "cancelled"}
    done = fake_server.await_end(slow)
    assert done.stdout == b"done\n" and done.end.data["exit_code"] == 0
    time.sleep(0.3)
    assert fake_server.stream_messages(follow) == cancelled.messages  # nothing after the end


def test_a_dropped_connection_stops_its_streams(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, throwaways: Throwaways
) -> None:
    talker = throwaways.run(TALK)
    connected_agent(fake_server, start_agent, state_dir)

    cat = fake_server.request(protocol.EXEC, docker_id=talker, cmd=["cat"], interactive=True)
    follow = fake_server.request(protocol.LOGS, docker_id=talker, follow=True)
    fake_server.request(protocol.STDIN, request_id=cat, data=b64(b"ping\n"))
    fake_server.wait_output(cat, b"ping\n")
    fake_server.wait_output(follow, b"out2\n")
    assert "cat" in throwaways.docker("exec", talker, "ps", "-o", "comm").stdout.split()

    fake_server.close_current(1012, "server restarting")
    fake_server.expect(protocol.HELLO, where=lambda m: fake_server.connections == 2)
    fake_server.expect(protocol.SNAPSHOT)
    # The agent closed the exec's connection: `cat` got EOF and ended; neither request is ended on the new one.
    deadline = time.monotonic() + 10
    while "cat" in throwaways.docker("exec", talker, "ps", "-o", "comm").stdout.split():
        assert time.monotonic() < deadline, "the exec outlived the connection"
        time.sleep(0.1)
    time.sleep(0.3)
    for request_id in (cat, follow):
        assert not [m for m in fake_server.stream_messages(request_id) if m.type == protocol.END]

    # The new connection serves streams as before.
    again = fake_server.await_end(fake_server.request(protocol.LOGS, docker_id=talker))
    assert again.stdout == b"out1\nout2\n"
