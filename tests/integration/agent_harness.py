"""Shared by the agent integration tests: a fake server speaking the agent protocol, and the real agent process.

The agent runs as a subprocess (so signals and exit codes are the real ones) with pre-written credentials; the
fake server records what arrives and can welcome, send messages (e.g. a `desired` set on every connection),
misbehave, restart, or remove the host. Test modules import the fixtures they use from here
(`*_fixture` functions, registered under the names without the suffix).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
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


def has_container(docker_id: str, state: str) -> Callable[[protocol.Message], bool]:
    def check(message: protocol.Message) -> bool:
        if message.type == protocol.SNAPSHOT:
            items = message.data["containers"]
        else:
            items = [message.data.get("container") or {}]
        return any(c.get("docker_id") == docker_id and c.get("state") == state for c in items)

    return check
