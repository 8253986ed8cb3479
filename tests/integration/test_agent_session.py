"""The real agent process against a tiny fake server speaking the protocol over a real websocket.

The agent runs as a subprocess (so SIGTERM and exit codes are the real ones) with pre-written credentials; the
fake server (agent_harness.py) records what arrives and can welcome, misbehave, restart, or remove the host.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.model import protocol
from corral.runtime.docker_engine import DockerEngine
from tests.integration.agent_harness import (  # noqa: F401
    FakeServer,
    StartAgent,
    fake_server_fixture,
    has_container,
    start_agent_fixture,
    state_dir_fixture,
)
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST
from tests.integration.conftest import TEST_IMAGE as IMAGE
from tests.integration.conftest import skip_or_fail

pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper(root_engine: DockerEngine) -> Iterator[str]:
    name = f"corral-test-agent-{secrets.token_hex(4)}"
    command = ["docker", "-H", DOCKER_HOST, "run", "-d", "--network", "none", "--name", name]
    run = subprocess.run(
        [*command, "--label", "io.corral.environment=env-1", IMAGE, "sleep", "300"],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        skip_or_fail(f"cannot start a {IMAGE} container (scripts/setup.sh builds it): {run.stderr.strip()}")
    docker_id = run.stdout.strip()
    yield docker_id
    subprocess.run(["docker", "-H", DOCKER_HOST, "rm", "-f", docker_id], capture_output=True)


def test_hello_snapshot_deltas_reconnect_and_removal(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, sleeper: str
) -> None:
    agent = start_agent(state_dir, DOCKER_HOST)

    _, hello = fake_server.expect(protocol.HELLO)
    assert hello.data["facts"]["arch"] == "x86_64" or os.uname().machine != "x86_64"
    assert hello.data["facts"]["cpus"] > 0 and hello.data["facts"]["engine_version"]
    assert hello.data["labels"] == {"zone": "a"}
    assert hello.data["agent_version"]
    assert base64.b64decode(fake_server.authorizations[0].removeprefix("Basic ")) == b"AKTEST:secret-test"

    fake_server.expect(protocol.SNAPSHOT, where=has_container(sleeper, "running"))
    fake_server.expect(protocol.HEARTBEAT, where=lambda m: abs(m.data["time"] - time.time()) < 5)

    # An unknown type is answered with an error naming it; a malformed message is ignored.
    fake_server.send(protocol.Message("frobnicate", {}, id="m-1").encode())
    _, error = fake_server.expect(protocol.ERROR)
    assert "frobnicate" in error.data["message"] and error.data["in_reply_to"] == "m-1"
    fake_server.send("{not json")
    fake_server.send(protocol.Message(protocol.DESIRED, {"containers": []}).encode())
    fake_server.expect(protocol.HEARTBEAT)

    # A container that stops on the engine is reported as a delta.
    subprocess.run(["docker", "-H", DOCKER_HOST, "stop", "-t", "0", sleeper], check=True, capture_output=True)
    _, delta = fake_server.expect(protocol.CONTAINER, where=has_container(sleeper, "exited"))
    assert delta.data["container"]["exit_code"] is not None
    subprocess.run(["docker", "-H", DOCKER_HOST, "rm", sleeper], check=True, capture_output=True)
    fake_server.expect(protocol.CONTAINER, where=lambda m: m.data.get("removed") == sleeper)

    # The server restarts: the agent reconnects on its own and starts over with hello + snapshot.
    fake_server.stop()
    time.sleep(0.3)
    fake_server.start()
    number, _ = fake_server.expect(protocol.HELLO)
    assert number == 2
    fake_server.expect(protocol.SNAPSHOT, where=lambda m: m.data.get("containers") is not None)

    # The host is removed: the server closes with 4404 and the agent gives up with exit code 1.
    fake_server.on_hello = "remove"
    fake_server.close_current(1012, "server restarting")
    assert agent.wait(timeout=10) == 1
    assert "host was removed from the server; re-register with a new token" in agent.log
    assert not (state_dir / "credentials.json").exists()
    assert (state_dir / "credentials.json.rejected").exists()


def test_sigterm_exits_zero_and_leaves_containers_alone(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, sleeper: str
) -> None:
    agent = start_agent(state_dir, DOCKER_HOST)
    fake_server.expect(protocol.SNAPSHOT, where=has_container(sleeper, "running"))
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0, agent.log
    state = subprocess.run(
        ["docker", "-H", DOCKER_HOST, "inspect", "-f", "{{.State.Status}}", sleeper], capture_output=True, text=True
    )
    assert state.stdout.strip() == "running"


def test_engine_down_keeps_the_session_alive(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent(state_dir, f"unix://{tmp_path}/no-docker.sock")
    _, hello = fake_server.expect(protocol.HELLO)
    assert hello.data["facts"]["cpus"] > 0  # this machine's own facts stand in for the engine's
    assert hello.data["facts"]["engine_version"] == ""
    _, engine = fake_server.expect(protocol.ENGINE)  # the server shows the host engine-down, with the reason
    assert engine.data["available"] is False and "no-docker.sock" in engine.data["reason"]
    for _ in range(3):
        fake_server.expect(protocol.HEARTBEAT)
    assert [
        m for m in fake_server.history if m.type == protocol.SNAPSHOT
    ] == []  # never an empty snapshot that would make the server forget containers
    assert agent.process.poll() is None
    agent.process.send_signal(signal.SIGINT)
    assert agent.wait(timeout=10) == 0
    assert "docker engine at unix://" in agent.log


def test_unregistered_host_without_token_exits_one(tmp_path: Path, start_agent: StartAgent) -> None:
    agent = start_agent(tmp_path / "empty", DOCKER_HOST)
    assert agent.wait(timeout=10) == 1
    assert "not registered yet" in agent.log and "--token" in agent.log


def test_registration_retries_while_the_server_is_unreachable_and_stops_cleanly(
    tmp_path: Path, start_agent: StartAgent
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = start_agent(tmp_path / "new", f"unix://{tmp_path}/no-docker.sock", "tok", url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 10
    while "registration failed" not in agent.log and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a few retries (backoff capped at 0.5 s), logged once
    assert agent.log.count("registration failed: cannot reach") == 1, agent.log
    assert agent.process.poll() is None
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    assert not (tmp_path / "new" / "credentials.json").exists()
