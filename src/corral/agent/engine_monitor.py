"""Keeps the Docker engine in view for the agent's asyncio world: engine calls, the event thread, outages.

Why: the docker SDK blocks, and the engine may be down, restarting, or vanish mid-stream. This module
runs every engine call on one worker thread (so calls never interleave on the SDK client), consumes the
event stream on a thread of its own, retries the engine with backoff when it goes away, and tells the
current session through a queue: a `ContainerEvent` per container event, `IMAGES_CHANGED` after an image
event, `ENGINE_LOST` when the engine stops answering (`down_reason` says why; the session tells the server) and
`RESYNC` whenever events may have been missed (the engine came back), so the session sends a full snapshot.
An engine that stops answering without closing its event stream (a frozen dockerd) is found by a ping on its own
connection and thread every 3 s (two unanswered: lost).
Events that arrive while no session listens are dropped: every new session starts with a snapshot anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from corral.agent.backoff import Backoff
from corral.model.entities import HostFacts
from corral.model.errors import Unavailable
from corral.runtime.docker_engine import DockerEngine, is_image_action, is_state_action, platform_facts
from corral.runtime.images import ImagePlatforms

log = logging.getLogger("corral.agent.engine")

T = TypeVar("T")

STABLE_STREAM_SECONDS = 30.0  # an event stream that lasted this long resets the engine backoff
PING_INTERVAL_SECONDS = 3.0  # how often the agent asks its engine whether it still answers
PING_TIMEOUT_SECONDS = 4.0
PINGS_MISSED = 2  # unanswered pings in a row that make the engine count as lost (a frozen dockerd)


@dataclass(frozen=True)
class ContainerEvent:
    action: str
    docker_id: str


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = _Resync()


class _ImagesChanged:
    def __repr__(self) -> str:
        return "IMAGES_CHANGED"


IMAGES_CHANGED: Final = _ImagesChanged()


class _EngineLost:
    def __repr__(self) -> str:
        return "ENGINE_LOST"


ENGINE_LOST: Final = _EngineLost()
EngineChange = ContainerEvent | _Resync | _ImagesChanged | _EngineLost

_STARTED_OR_GONE = frozenset({"start", "die", "destroy"})


async def await_starts(queue: asyncio.Queue[EngineChange], changes: list[EngineChange], deadline: float) -> None:
    """Wait (until `deadline` at most) for the start, death or removal of every container created in `changes`,
    adding what arrives meanwhile: a container is created and started by one converge step, and one report of it
    running costs the server one write where a report of each step cost two."""
    loop = asyncio.get_running_loop()
    waiting: set[str] = set()
    for change in changes:
        _note_start(waiting, change)
    while waiting and (left := deadline - loop.time()) > 0:
        try:
            change = await asyncio.wait_for(queue.get(), timeout=left)
        except TimeoutError:
            return
        changes.append(change)
        if not isinstance(change, ContainerEvent):
            return  # the engine went, or a resync: report what there is now
        _note_start(waiting, change)


def _note_start(waiting: set[str], change: EngineChange) -> None:
    if isinstance(change, ContainerEvent):
        if change.action == "create":
            waiting.add(change.docker_id)
        elif change.action in _STARTED_OR_GONE:
            waiting.discard(change.docker_id)


class EngineMonitor:
    def __init__(self, engine: DockerEngine, *, max_backoff: float) -> None:
        self.engine = engine
        self.available = False
        self.down_reason = ""  # why the engine does not answer, once it failed; "" while it answers (or untried)
        self._max_backoff = max_backoff
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="docker-call")
        self._queue: asyncio.Queue[EngineChange] | None = None
        self._facts: HostFacts | None = None
        self._image_platforms = ImagePlatforms(engine)

    # -- calls from the event loop

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run a blocking engine method on the engine worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def facts(self) -> HostFacts:
        """The engine's facts; while it is down, the last ones seen, or this machine's own view."""
        try:
            self._facts = await self.call(self.engine.facts)
        except Unavailable as exc:
            if self._facts is None:
                log.warning("%s; reporting this machine's facts instead", exc.message)
                return platform_facts()
        return self._facts

    async def image_platforms(self) -> dict[str, tuple[str, ...]]:
        """Image reference -> architectures of the images on the engine; raises `Unavailable` while it is down."""
        return await self.call(self._image_platforms.read)

    def attach(self) -> asyncio.Queue[EngineChange]:
        """Start delivering engine changes to a new session (replacing any earlier listener)."""
        self._queue = asyncio.Queue()
        return self._queue

    def detach(self, queue: asyncio.Queue[EngineChange]) -> None:
        if self._queue is queue:
            self._queue = None

    def _deliver(self, change: EngineChange) -> None:
        if self._queue is not None:
            self._queue.put_nowait(change)

    # -- the supervising task

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the engine until `stop` is set; after an outage, subscribe again with backoff."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(cap=self._max_backoff)
        announced_down = False
        while not stop.is_set():
            thread_stop = threading.Event()
            ended = asyncio.Event()
            subscribed_at = time.monotonic()
            try:
                events = await self.call(self.engine.events, thread_stop)
            except Unavailable as exc:
                if not announced_down:
                    log.warning("%s; retrying in the background", exc.message)
                    announced_down = True
                self.available = False
                if not self.down_reason:
                    self.down_reason = exc.message
                    self._deliver(ENGINE_LOST)
                await _sleep_or_stop(stop, backoff.next_delay())
                continue

            threading.Thread(target=self._pump, args=(events, ended, loop), name="docker-events", daemon=True).start()
            if announced_down or not self.available:
                log.info("docker engine at %s is available", self.engine.docker_host)
            announced_down = False
            self.available = True
            self.down_reason = ""
            self._deliver(RESYNC)

            waiter = asyncio.create_task(stop.wait())
            ender = asyncio.create_task(ended.wait())
            pinger = asyncio.create_task(self._unanswered_pings(stop))
            done, _ = await asyncio.wait({waiter, ender, pinger}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiter, ender, pinger):
                task.cancel()
            thread_stop.set()
            if stop.is_set():
                break
            self.available = False
            if time.monotonic() - subscribed_at >= STABLE_STREAM_SECONDS:
                backoff.reset()
            why = "does not answer (frozen?)" if pinger in done else "was lost"
            log.warning("the docker engine at %s %s; reconnecting", self.engine.docker_host, why)
            announced_down = True
            self.down_reason = f"the docker engine at {self.engine.docker_host} {why}"
            self._deliver(ENGINE_LOST)
            await _sleep_or_stop(stop, backoff.next_delay())

    async def _unanswered_pings(self, stop: asyncio.Event) -> None:
        """Returns once the engine left `PINGS_MISSED` pings in a row unanswered: an engine that hangs (a frozen
        dockerd) keeps its event stream open without a word, so only asking tells it apart from a quiet one. The
        pings go on their own connection and thread, never queued behind a slow engine call."""
        pinger = DockerEngine(self.engine.docker_host, timeout=PING_TIMEOUT_SECONDS)
        # a thread of its own: the default pool may be full of calls hanging on the same frozen engine
        thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="docker-ping")
        loop = asyncio.get_running_loop()
        missed = 0
        try:
            while missed < PINGS_MISSED:
                await _sleep_or_stop(stop, PING_INTERVAL_SECONDS)
                if stop.is_set():
                    return
                answered = await loop.run_in_executor(thread, pinger.ping)
                missed = 0 if answered else missed + 1
        finally:
            thread.submit(pinger.close)
            thread.shutdown(wait=False)

    def _pump(self, events: Iterator[tuple[str, str]], ended: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
        """The event thread: hand each state-changing event to the loop; say when the stream ends."""
        try:
            for action, docker_id in events:
                if is_state_action(action):
                    loop.call_soon_threadsafe(self._deliver, ContainerEvent(action, docker_id))
                elif is_image_action(action):
                    loop.call_soon_threadsafe(self._deliver, IMAGES_CHANGED)
        except Exception:  # the thread must end quietly; the supervisor reconnects
            log.debug("event thread failed", exc_info=True)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed at exit
                loop.call_soon_threadsafe(ended.set)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)
