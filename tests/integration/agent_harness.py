"""Shared by the agent integration tests: a fake server speaking the agent protocol, and the real agent process.

The agent runs as a subprocess (so signals and exit codes are the real ones) with pre-written credentials; the
fake server records what arrives and can welcome, send messages (e.g. a `desired` set on every connection),
misbehave, restart, or remove the host. Test modules import the fixtures they use from here
(`*_fixture` functions, registered under the names without the suffix).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from corral.agent.credentials_store import save_credentials
from corral.model import protocol
from corral.model.credentials import AgentCredentials
from tests.integration.conftest import ROOT_DOCKER_HOST, TEST_IMAGE, skip_or_fail

HEARTBEAT = 0.2

AGENT_CODE = """
import sys
from pathlib import Path
from corral.agent import run_agent
from corral.config import Settings
token = sys.argv[4] if len(sys.argv) > 4 else None
sys.exit(run_agent(url=sys.argv[1], token=token, state_dir=Path(sys.argv[2]), docker_host=sys.argv[3],
                   labels={"zone": "a"}, name=None, settings=Settings(), insecure=True))
"""


@dataclass(frozen=True)
class StreamResult:
    """What the agent sent for one logs or exec request: its output per stream and its `end`."""

    stdout: bytes
    stderr: bytes
    end: protocol.Message
    messages: list[protocol.Message]  # every `output` and the `end`, in the order they arrived


class FakeServer:
    """A websocket endpoint at /v1/agent on a fixed port, run on its own event loop thread."""

    def __init__(self, environment_id: str = "env-1") -> None:
        self.environment_id = environment_id
        self.received: queue.Queue[tuple[int, protocol.Message]] = queue.Queue()
        self.history: list[protocol.Message] = []
        self.authorizations: list[str] = []
        self.on_hello: str = "welcome"  # or "remove": close with 4404
        self.after_welcome: list[str] = []  # raw messages sent right after every welcome (e.g. a `desired` set)
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
                welcome = {"host_id": "host-1", "environment_id": self.environment_id, "heartbeat_seconds": HEARTBEAT}
                await ws.send(protocol.Message(protocol.WELCOME, welcome).encode())
                for raw_message in self.after_welcome:
                    await ws.send(raw_message)

    # -- streams (logs, exec)

    def request(self, kind: str, **data: Any) -> str:
        """Send a stream message (`logs`, `exec`, `stdin`, ...); a new request gets a fresh request_id. The id."""
        request_id = str(data.setdefault("request_id", secrets.token_hex(6)))
        self.send(protocol.Message(kind, data).encode())
        return request_id

    def stream_messages(self, request_id: str) -> list[protocol.Message]:
        return [
            m
            for m in list(self.history)
            if m.type in (protocol.OUTPUT, protocol.END) and m.data.get("request_id") == request_id
        ]

    def stream_output(self, request_id: str, stream: str = "stdout") -> bytes:
        return b"".join(
            base64.b64decode(m.data["data"])
            for m in self.stream_messages(request_id)
            if m.type == protocol.OUTPUT and m.data.get("stream") == stream
        )

    def wait_output(self, request_id: str, text: bytes, *, stream: str = "stdout", timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stream_output(request_id, stream):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the {stream} of {request_id} within {timeout}s")
            time.sleep(0.02)

    def await_end(self, request_id: str, timeout: float = 10.0) -> StreamResult:
        """Wait for the request's `end`; everything it sent, checked to be well formed (outputs, then one end)."""
        deadline = time.monotonic() + timeout
        while not any(m.type == protocol.END for m in self.stream_messages(request_id)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no end for request {request_id} within {timeout}s")
            time.sleep(0.02)
        messages = self.stream_messages(request_id)
        assert [m.type for m in messages].count(protocol.END) == 1 and messages[-1].type == protocol.END, messages
        for m in messages[:-1]:
            assert m.data["stream"] in ("stdout", "stderr"), m
            assert 0 < len(base64.b64decode(m.data["data"])) <= protocol.MAX_OUTPUT_CHUNK, m
        return StreamResult(
            stdout=self.stream_output(request_id, "stdout"),
            stderr=self.stream_output(request_id, "stderr"),
            end=messages[-1],
            messages=messages,
        )

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


@pytest.fixture(name="fake_server")
def fake_server_fixture() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.shutdown()


@pytest.fixture(name="state_dir")
def state_dir_fixture(tmp_path: Path, fake_server: FakeServer) -> Path:
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


@pytest.fixture(name="start_agent")
def start_agent_fixture(tmp_path: Path, fake_server: FakeServer) -> Iterator[StartAgent]:
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


class Throwaways:
    """Throwaway containers on an engine (`sh -c SCRIPT` in the test image, unique names, `--network none`)."""

    def __init__(self, docker_host: str, prefix: str = "corral-test") -> None:
        self.docker_host = docker_host
        self.prefix = prefix
        self.made: list[str] = []

    def run(self, script: str, *, tty: bool = False) -> str:
        """Start one; its docker id. Skips (fails in CI) when the engine or the image is missing."""
        name = f"{self.prefix}-{secrets.token_hex(4)}"
        command = ["docker", "-H", self.docker_host, "run", "-d", "--network", "none", "--name", name]
        started = subprocess.run(
            [*command, *(["-t"] if tty else []), TEST_IMAGE, "sh", "-c", script], capture_output=True, text=True
        )
        if started.returncode != 0:
            self.docker("rm", "-f", name)
            reason = started.stderr.strip()
            skip_or_fail(f"cannot start a {TEST_IMAGE} container (scripts/setup.sh builds it): {reason}")
        docker_id = started.stdout.strip()
        self.made.append(docker_id)
        return docker_id

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", self.docker_host, *args], capture_output=True, text=True)

    def remove_all(self) -> None:
        if self.made:
            self.docker("rm", "-f", *self.made)
            self.made.clear()


@pytest.fixture(name="throwaways")
def throwaways_fixture() -> Iterator[Throwaways]:
    containers = Throwaways(ROOT_DOCKER_HOST, prefix=f"corral-test-{secrets.token_hex(2)}")
    try:
        yield containers
    finally:
        containers.remove_all()


def has_container(docker_id: str, state: str) -> Callable[[protocol.Message], bool]:
    def check(message: protocol.Message) -> bool:
        if message.type == protocol.SNAPSHOT:
            items = message.data["containers"]
        else:
            items = [message.data.get("container") or {}]
        return any(c.get("docker_id") == docker_id and c.get("state") == state for c in items)

    return check
