"""Relay queues stay bounded when the client reads slowly: the server's hub and the agent's StreamManager wired
back to back (no socket, no engine), a fake runtime producing logs as fast as it is allowed, and a slow consumer.

The hub pauses the one stream whose client lags (the agent's reader thread then waits, so the fake runtime stops
producing) and resumes it once the client caught up; an agent that ignores `pause` gets its stream ended with a
clear reason instead of filling the server's memory; other streams of the same agent go on meanwhile."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from corral.agent.streams import OUTBOX_BYTES, StreamManager
from corral.config import Settings
from corral.model import protocol
from corral.server.hub.hub import AgentHub
from corral.server.hub.stream_relay import Stream
from corral.server.shared.events import EventBus

HOST = "h-test"
CHUNK = 16 * 1024


class EndlessLogs:
    """A container whose log never ends; counts what the agent read from it."""

    def __init__(self) -> None:
        self.produced: dict[str, int] = {}

    def logs(
        self,
        docker_id: str,
        *,
        follow: bool,
        tail: int | None,
        timestamps: bool,
        stop: threading.Event,
        since: float | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        while not stop.is_set():
            self.produced[docker_id] = self.produced.get(docker_id, 0) + CHUNK
            yield "stdout", b"x" * CHUNK

    def exec_run(self, docker_id: str, cmd: Sequence[str], *, tty: bool, interactive: bool) -> Any:
        raise NotImplementedError

    def stats(self, docker_id: str, *, stream: bool, stop: threading.Event) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


class Wire:
    """The agent's socket: server -> agent messages go to the StreamManager, agent -> server ones to the hub."""

    def __init__(self, hub: AgentHub, manager_of: list[StreamManager], *, honour_pause: bool = True) -> None:
        self.hub = hub
        self.manager_of = manager_of
        self.honour_pause = honour_pause
        self.sent: list[protocol.Message] = []
        self.welcomed = True  # as a session after its welcome
        self.tasks: set[asyncio.Task[None]] = set()

    async def send_encoded(self, text: str) -> None:  # the hub's AgentSession interface
        message = protocol.decode(text)
        self.sent.append(message)
        if message.type in (protocol.PAUSE, protocol.RESUME) and not self.honour_pause:
            return
        task = asyncio.create_task(self.manager_of[0].handle(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def agent_send(self, kind: str, data: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real socket yields to the loop between messages
        await self.hub.relay.on_message(HOST, protocol.Message(kind, data))


def _setup(*, honour_pause: bool = True) -> tuple[AgentHub, Wire, EndlessLogs]:
    hub = AgentHub(store=None, bus=EventBus(), settings=Settings())  # type: ignore[arg-type]  # streams need no store
    hub.relay.stream_high_bytes = 256 * 1024
    hub.relay.stream_low_bytes = 64 * 1024
    hub.relay.stream_limit_bytes = 4 * 1024 * 1024
    managers: list[StreamManager] = []
    wire = Wire(hub, managers, honour_pause=honour_pause)
    source = EndlessLogs()
    managers.append(StreamManager(source, wire.agent_send))
    hub.sessions[HOST] = wire  # type: ignore[assignment]
    return hub, wire, source


async def _read(hub: AgentHub, stream: Stream, count: int, pause: float) -> int:
    got = 0
    for _ in range(count):
        message = await hub.relay.next_message(stream)
        if message.type == protocol.END:
            break
        got += len(base64.b64decode(message.data["data"]))
        await asyncio.sleep(pause)
    return got


def test_a_slow_client_keeps_the_servers_queue_and_the_agents_reading_bounded() -> None:
    async def scenario() -> None:
        hub, wire, source = _setup()
        slow = await hub.relay.open_stream(HOST, protocol.LOGS, {"docker_id": "slow", "follow": True})
        fast = await hub.relay.open_stream(HOST, protocol.LOGS, {"docker_id": "fast", "follow": True})
        fast_reader = asyncio.create_task(_read(hub, fast, 10**6, 0))  # reads all it gets, at once
        peak = 0
        for _ in range(40):  # the slow client reads nothing for a while
            await asyncio.sleep(0.02)
            peak = max(peak, slow.buffered)
        assert slow.paused, "the lagging stream was paused"
        assert any(m.type == protocol.PAUSE and m.data["request_id"] == slow.request_id for m in wire.sent)
        fast_before = source.produced["fast"]
        bound = hub.relay.stream_high_bytes + 2 * OUTBOX_BYTES * 4 // 3 + 64 * 1024
        assert peak <= bound, f"server buffered {peak} bytes for the slow stream (bound {bound})"
        produced = source.produced["slow"]
        await asyncio.sleep(0.2)
        assert source.produced["slow"] - produced <= 2 * OUTBOX_BYTES, "the agent stopped reading the paused stream"
        fast_more = source.produced["fast"] - fast_before
        assert fast_more > 4 * hub.relay.stream_high_bytes, f"the other stream went on meanwhile ({fast_more} bytes)"
        got = await _read(hub, slow, 200, 0)  # the client catches up: the agent is told to resume
        assert got > hub.relay.stream_high_bytes
        assert any(m.type == protocol.RESUME and m.data["request_id"] == slow.request_id for m in wire.sent)
        await hub.relay.close_stream(slow)
        await hub.relay.close_stream(fast)
        assert await fast_reader > 0
        await wire.manager_of[0].close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_an_agent_ignoring_pause_gets_its_stream_ended_with_a_reason() -> None:
    async def scenario() -> None:
        hub, wire, _source = _setup(honour_pause=False)
        stream = await hub.relay.open_stream(HOST, protocol.LOGS, {"docker_id": "c1", "follow": True})
        for _ in range(200):
            await asyncio.sleep(0.01)
            assert stream.buffered <= hub.relay.stream_limit_bytes
            if stream.ended:
                break
        assert stream.ended, "the stream was ended once the limit was passed"
        assert any(m.type == protocol.CANCEL for m in wire.sent)
        last = None
        while not stream.queue.empty():
            last = await hub.relay.next_message(stream)
        assert last is not None and last.type == protocol.END
        assert "read too slowly" in str(last.data["error"])
        await wire.manager_of[0].close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_stream_paused_too_long_is_ended() -> None:
    async def scenario() -> None:
        hub, wire, _source = _setup()
        hub.relay.stream_stall_seconds = 0.3
        stream = await hub.relay.open_stream(HOST, protocol.LOGS, {"docker_id": "c1", "follow": True})
        for _ in range(100):
            await asyncio.sleep(0.02)
            if stream.ended:
                break
        assert stream.ended
        messages = []
        while not stream.queue.empty():
            messages.append(await hub.relay.next_message(stream))
        assert messages[-1].type == protocol.END and "read nothing for 0.3 s" in messages[-1].data["error"]
        await wire.manager_of[0].close()

    asyncio.run(asyncio.wait_for(scenario(), 20))
