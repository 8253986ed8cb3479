"""The real agent process against a tiny fake server speaking the protocol over a real websocket.

The agent runs as a subprocess (so SIGTERM and exit codes are the real ones) with pre-written credentials; the
fake server records what arrives and can welcome, misbehave, restart, or remove the host.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from corral.agent.credentials_store import save_credentials
from corral.model import protocol
from corral.model.credentials import AgentCredentials
from corral.runtime.docker_engine import DockerEngine
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST
from tests.integration.conftest import TEST_IMAGE as IMAGE
from tests.integration.conftest import skip_or_fail

pytestmark = pytest.mark.integration

HEARTBEAT = 0.2

AGENT_CODE = """
import sys
from pathlib import Path
from corral.agent import run_agent
from corral.config import Settings
token = sys.argv[4] if len(sys.argv) > 4 else None
sys.exit(run_agent(url=sys.argv[1], token=token, state_dir=Path(sys.argv[2]), docker_host=sys.argv[3],
                   labels={"zone": "a"}, name=None, settings=Settings()))
"""


class FakeServer:
    """A websocket endpoint at /v1/agent on a fixed port, run on its own event loop thread."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[int, protocol.Message]] = queue.Queue()
        self.history: list[protocol.Message] = []
        self.authorizations: list[str] = []
        self.on_hello: str = "welcome"  # or "remove": close with 4404
        self.port = 0
        self.connections = 0
        self._current: ServerConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Server | None = None

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> None:
        async def go() -> Server:
            return await serve(self._handle, "127.0.0.1", self.port)

        self._server = self._run(go())
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def go() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        self._run(go())

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def send(self, raw: str) -> None:
        async def go() -> None:
            assert self._current is not None
            await self._current.send(raw)

        self._run(go())

    def close_current(self, code: int, reason: str = "") -> None:
        async def go() -> None:
            assert self._current is not None
            await self._current.close(code, reason)

        self._run(go())

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path != "/v1/agent":
            await ws.close(4404, "wrong path")
            return
        self.connections += 1
        number = self.connections
        self._current = ws
        self.authorizations.append(ws.request.headers.get("Authorization", ""))
        async for raw in ws:
            message = protocol.decode(raw)
            self.history.append(message)
            self.received.put((number, message))
            if message.type == protocol.HELLO:
                if self.on_hello == "remove":
                    await ws.close(protocol.CLOSE_HOST_REMOVED, "host removed")
                    return
                welcome = {"host_id": "host-1", "environment_id": "env-1", "heartbeat_seconds": HEARTBEAT}
                await ws.send(protocol.Message(protocol.WELCOME, welcome).encode())

    def expect(
        self, kind: str, *, where: Callable[[protocol.Message], bool] = lambda m: True, timeout: float = 10.0
    ) -> tuple[int, protocol.Message]:
        """The next received message of `kind` matching `where`, skipping others."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                number, message = self.received.get(timeout=remaining)
            except queue.Empty:
                break
            if message.type == kind and where(message):
                return number, message
        raise AssertionError(f"no {kind} message within {timeout}s")


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.shutdown()


@pytest.fixture
def state_dir(tmp_path: Path, fake_server: FakeServer) -> Path:
    state = tmp_path / "agent"
    save_credentials(
        state,
        AgentCredentials(
            url=f"http://127.0.0.1:{fake_server.port}",
            host_id="host-1",
            environment_id="env-1",
            access_key="AKTEST",
            secret_key="secret-test",
        ),
    )
    return state


class Agent:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent still running after {timeout}s; its log:\n{self.log}") from None


class StartAgent(Protocol):
    def __call__(self, state: Path, docker_host: str, *extra: str, url: str | None = None) -> Agent: ...


@pytest.fixture
def start_agent(tmp_path: Path, fake_server: FakeServer) -> Iterator[StartAgent]:
    started: list[Agent] = []

    def start(state: Path, docker_host: str, *extra: str, url: str | None = None) -> Agent:
        log_path = tmp_path / f"agent-{len(started)}.log"
        env = {
            **os.environ,
            "CORRAL_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "CORRAL_AGENT_MAX_BACKOFF_SECONDS": "0.5",
        }
        with log_path.open("wb") as log_file:
            server_url = url or f"http://127.0.0.1:{fake_server.port}"
            process = subprocess.Popen(
                [sys.executable, "-c", AGENT_CODE, server_url, str(state), docker_host, *extra],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
        agent = Agent(process, log_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(timeout=5)


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


def _has_container(docker_id: str, state: str) -> Callable[[protocol.Message], bool]:
    def check(message: protocol.Message) -> bool:
        if message.type == protocol.SNAPSHOT:
            items = message.data["containers"]
        else:
            items = [message.data.get("container") or {}]
        return any(c.get("docker_id") == docker_id and c.get("state") == state for c in items)

    return check


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

    fake_server.expect(protocol.SNAPSHOT, where=_has_container(sleeper, "running"))
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
    _, delta = fake_server.expect(protocol.CONTAINER, where=_has_container(sleeper, "exited"))
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
    fake_server.expect(protocol.SNAPSHOT, where=_has_container(sleeper, "running"))
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
