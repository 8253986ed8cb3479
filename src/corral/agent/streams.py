"""The agent's side of logs and exec streams (model/protocol.py, "Streams"): one reader thread per stream.

Why threads and an outbox: reading a container's logs or an exec's output blocks (runtime/streams.py), and the
websocket loop must never wait for it — heartbeats and convergence go on while streams run. Each stream has a
reader thread that pushes what it reads into the stream's outbox, and an asyncio task that sends the outbox as
`output` messages, joining small pieces that piled up meanwhile (at most MAX_OUTPUT_CHUNK raw bytes per message).
The outbox holds at most OUTBOX_BYTES: a reader faster than the websocket waits (backpressure), so a huge log costs
bounded memory. The reader ends by putting the stream's single `end` into the same outbox, so every `output` of a
request is sent before its `end`.

The server may `pause` a stream whose client reads slowly (and `resume` it later): the stream's sending task waits,
its outbox fills, and its reader thread waits in turn, so the container's output stays in Docker; the other
streams of the connection go on, as the socket itself never waits for a paused stream.

Exec input (`stdin`, eof, `resize`) goes to a control thread of the exec: writing to a process that does not read
its stdin blocks, and must block neither the loop nor the output. At most MAX_STDIN_BYTES of input wait for the
process; past that the exec is stopped with a reason that says so (the agent's memory stays bounded).

When the websocket drops, `close` stops every stream of the connection and sends nothing more: the server has
forgotten them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.model import protocol
from corral.model.errors import CorralError, InvalidInput

log = logging.getLogger("corral.agent.streams")

MAX_STREAMS = 32  # per connection; more are refused with an `end` error
OUTBOX_BYTES = 4 * protocol.MAX_OUTPUT_CHUNK  # per stream, read but not yet sent
MAX_REQUEST_ID = 128
MAX_TERMINAL = 65535
CANCELLED = "cancelled"
MAX_STDIN_BYTES = 1024 * 1024  # per exec, sent by the client but not yet read by the process

Send = Callable[[str, dict[str, Any]], Awaitable[None]]


# -- what the runtime offers (runtime/streams.py ContainerStreams, or a fake in tests)


class ExecHandle(Protocol):
    def read(self) -> Iterator[tuple[str, bytes]]: ...
    def write(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, rows: int, cols: int) -> None: ...
    def exit_code(self) -> int | None: ...
    def close(self) -> None: ...


class StreamSource(Protocol):
    def logs(
        self,
        docker_id: str,
        *,
        follow: bool,
        tail: int | None,
        timestamps: bool,
        stop: threading.Event,
        since: float | None = None,
    ) -> Iterator[tuple[str, bytes]]: ...

    def exec_run(self, docker_id: str, cmd: Sequence[str], *, tty: bool, interactive: bool) -> ExecHandle: ...

    def stats(self, docker_id: str, *, stream: bool, stop: threading.Event) -> Iterator[dict[str, Any]]: ...


# -- requests, checked


@dataclass(frozen=True)
class LogsRequest:
    request_id: str
    docker_id: str
    follow: bool = False
    tail: int | None = None
    timestamps: bool = False
    since: float | None = None  # UNIX time: only output written at or after it


@dataclass(frozen=True)
class ExecRequest:
    request_id: str
    docker_id: str
    cmd: tuple[str, ...]
    tty: bool = False
    interactive: bool = False


@dataclass(frozen=True)
class StatsRequest:
    request_id: str
    docker_id: str
    stream: bool = False


@dataclass(frozen=True)
class JobRequest:
    """An image job (model/protocol.py `build`, `save`, `load`): the agent's image jobs (agent/builds.py) run it
    as an exec-like handle; a `load` takes its input as `stdin`."""

    request_id: str
    kind: str
    data: dict[str, Any]


JobSource = Callable[[str, dict[str, Any]], ExecHandle]  # (kind, data) -> a running job
JOB_KINDS = frozenset({protocol.BUILD, protocol.SAVE, protocol.LOAD, protocol.REMOVE_IMAGE})

STATS_STREAM = "stats"  # the `stream` of the `output` messages of a stats request: one JSON line per sample


def request_id_of(data: dict[str, Any]) -> str:
    value = data.get("request_id")
    if not isinstance(value, str) or not value or len(value) > MAX_REQUEST_ID:
        raise InvalidInput(f"request_id must be a string of 1 to {MAX_REQUEST_ID} characters", field="request_id")
    return value


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value


def _docker_id(data: dict[str, Any]) -> str:
    value = data.get("docker_id")
    if not isinstance(value, str) or not value:
        raise InvalidInput("docker_id must be a non-empty string", field="docker_id")
    return value


def parse_logs(data: dict[str, Any]) -> LogsRequest:
    request_id = request_id_of(data)
    tail = data.get("tail")
    if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
        raise InvalidInput("tail must be an integer >= 0, or null for the whole log", field="tail")
    since = data.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int | float) or since < 0):
        raise InvalidInput("since must be a UNIX time >= 0, or null for the whole log", field="since")
    return LogsRequest(
        request_id=request_id,
        docker_id=_docker_id(data),
        follow=_flag(data, "follow"),
        tail=tail,
        timestamps=_flag(data, "timestamps"),
        since=float(since) if since is not None else None,
    )


def parse_exec(data: dict[str, Any]) -> ExecRequest:
    request_id = request_id_of(data)
    cmd = data.get("cmd")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(part, str) for part in cmd):
        raise InvalidInput("cmd must be a non-empty list of strings", field="cmd")
    return ExecRequest(
        request_id=request_id,
        docker_id=_docker_id(data),
        cmd=tuple(cmd),
        tty=_flag(data, "tty"),
        interactive=_flag(data, "interactive"),
    )


def parse_stats(data: dict[str, Any]) -> StatsRequest:
    return StatsRequest(request_id=request_id_of(data), docker_id=_docker_id(data), stream=_flag(data, "stream"))


def parse_stdin(data: dict[str, Any]) -> tuple[bytes, bool]:
    """(bytes to write, whether stdin ends after them)."""
    eof = _flag(data, "eof")
    text = data.get("data", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput("stdin data must be a base64 string", field="data")
    try:
        return base64.b64decode(text, validate=True), eof
    except (binascii.Error, ValueError):
        raise InvalidInput("stdin data is not valid base64", field="data") from None


def parse_resize(data: dict[str, Any]) -> tuple[int, int]:
    size: list[int] = []
    for name in ("rows", "cols"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TERMINAL:
            raise InvalidInput(f"{name} must be an integer from 1 to {MAX_TERMINAL}", field=name)
        size.append(value)
    return size[0], size[1]


def coalesce(pieces: Iterable[tuple[str, bytes]], limit: int = protocol.MAX_OUTPUT_CHUNK) -> list[tuple[str, bytes]]:
    """Join adjacent pieces of the same stream and cut the result into pieces of at most `limit` bytes, in order."""
    joined: list[tuple[str, bytearray]] = []
    for stream, data in pieces:
        if not data:
            continue
        if joined and joined[-1][0] == stream:
            joined[-1][1].extend(data)
        else:
            joined.append((stream, bytearray(data)))
    return [
        (stream, bytes(data[start : start + limit])) for stream, data in joined for start in range(0, len(data), limit)
    ]


# -- one stream


class _Dropped(Exception):
    """The connection of the stream is gone: stop without a word."""


@dataclass(frozen=True)
class _End:
    exit_code: int | None
    error: str | None


class _Stream:
    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop, *, takes_input: bool = False) -> None:
        self.request_id = request_id
        self.takes_input = takes_input  # an exec with stdin or a tty: `stdin` and `resize` go to `controls`
        self.stop = threading.Event()  # set by a cancel or a dropped connection: the reader stops
        self.cancelled = False
        self.failure: str | None = None  # why the agent itself stopped the stream (the `end` error)
        self.stdin_pending = 0  # bytes of stdin queued for the control thread
        self.dropped = False
        self.controls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.task: asyncio.Task[None] | None = None
        self._loop = loop
        self._wake = asyncio.Event()
        self._lock = threading.Condition()
        self._outbox: collections.deque[tuple[str, bytes] | _End] = collections.deque()
        self._buffered = 0
        self._handle: ExecHandle | None = None
        self.resumed = asyncio.Event()  # cleared while the server has paused the stream
        self.resumed.set()

    # the reader thread

    def emit(self, stream: str, data: bytes) -> None:
        """Queue output for sending; wait while the outbox is full. Raises _Dropped once the connection is gone."""
        if not data:
            return
        with self._lock:
            while self._buffered >= OUTBOX_BYTES and not self.dropped:
                self._lock.wait(0.5)
            if self.dropped:
                raise _Dropped
            self._outbox.append((stream, data))
            self._buffered += len(data)
        self._notify()

    def finish(self, exit_code: int | None, error: str | None) -> None:
        with self._lock:
            if self.dropped:
                return
            self._outbox.append(_End(exit_code, error))
        self._notify()

    def queue_stdin(self, data: bytes) -> bool:
        """Queue input for the control thread; False (nothing queued) when too much already waits."""
        with self._lock:
            if self.stdin_pending + len(data) > MAX_STDIN_BYTES:
                return False
            self.stdin_pending += len(data)
        self.controls.put(("stdin", data))
        return True

    def stdin_written(self, count: int) -> None:
        with self._lock:
            self.stdin_pending -= count

    def attach(self, handle: ExecHandle) -> bool:
        """Remember the running exec (for cancel); False if the stream was stopped meanwhile."""
        with self._lock:
            self._handle = handle
            return not self.stop.is_set()

    def _notify(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: the agent is exiting
            raise _Dropped from None

    # the event loop

    async def next_batch(self) -> list[tuple[str, bytes] | _End]:
        await self._wake.wait()
        self._wake.clear()
        with self._lock:
            batch = list(self._outbox)
            self._outbox.clear()
            self._buffered = 0
            self._lock.notify_all()
        return batch

    def halt(self, *, dropped: bool) -> None:
        """Stop the stream (from the loop; never blocks): a cancel, or the connection is gone (`dropped`)."""
        with self._lock:
            self.cancelled = self.cancelled or not dropped
            self.dropped = self.dropped or dropped
            self.stop.set()
            handle = self._handle
            self._lock.notify_all()
        self.controls.put(None)
        self.resumed.set()  # a stopped stream sends its `end` whatever the server said before
        if handle is not None:
            handle.close()


# -- all streams of one connection


class StreamManager:
    """Runs the logs and exec streams of one websocket connection; `handle` takes the server's stream messages."""

    def __init__(
        self, source: StreamSource, send: Send, *, limit: int = MAX_STREAMS, jobs: JobSource | None = None
    ) -> None:
        self.source = source
        self.jobs = jobs
        self._send = send
        self._limit = limit
        self._streams: dict[str, _Stream] = {}
        self._closed = False

    @property
    def active(self) -> int:
        return len(self._streams)

    async def handle(self, message: protocol.Message) -> None:
        """Act on a `logs`, `exec`, `stdin`, `resize` or `cancel` message. Never raises for bad input."""
        if self._closed:
            return
        kind = message.type
        if kind in (protocol.LOGS, protocol.EXEC, protocol.STATS) or kind in JOB_KINDS:
            await self._open(message)
            return
        try:
            request_id = request_id_of(message.data)
        except InvalidInput as exc:
            log.warning("ignoring a %s message: %s", kind, exc.message)
            return
        stream = self._streams.get(request_id)
        if stream is None:
            log.debug("ignoring %s for request %s, which is not running (any more)", kind, request_id)
            return
        if kind == protocol.CANCEL:
            stream.halt(dropped=False)
            return
        if kind == protocol.PAUSE:
            if not stream.stop.is_set():
                stream.resumed.clear()
            return
        if kind == protocol.RESUME:
            stream.resumed.set()
            return
        if not stream.takes_input:
            log.debug("ignoring %s for request %s, which takes no input", kind, request_id)
            return
        try:
            if kind == protocol.STDIN:
                data, eof = parse_stdin(message.data)
                if data and not stream.queue_stdin(data):
                    stream.failure = f"more than {MAX_STDIN_BYTES} bytes of stdin waited for the process; exec stopped"
                    stream.halt(dropped=False)
                    return
                if eof:
                    stream.controls.put(("eof",))
            elif kind == protocol.RESIZE:
                stream.controls.put(("resize", *parse_resize(message.data)))
        except InvalidInput as exc:
            log.warning("ignoring a %s message for request %s: %s", kind, request_id, exc.message)
            await self._send(protocol.ERROR, {"message": f"{kind}: {exc.message}", "in_reply_to": message.id or None})

    async def close(self) -> None:
        """The connection is gone: stop every stream, send nothing more."""
        self._closed = True
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.halt(dropped=True)
        if streams:
            log.info("stopped %d logs/exec stream(s) of the closed connection", len(streams))
        tasks = [stream.task for stream in streams if stream.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- opening

    async def _open(self, message: protocol.Message) -> None:
        try:
            request_id = request_id_of(message.data)
        except InvalidInput as exc:  # no id to answer with an `end`
            log.warning("ignoring a %s request: %s", message.type, exc.message)
            await self._send(protocol.ERROR, {"message": exc.message, "in_reply_to": message.id or None})
            return
        if request_id in self._streams:
            log.warning("ignoring a %s request: request %s is already running", message.type, request_id)
            await self._send(
                protocol.ERROR,
                {"message": f"request_id {request_id} is already in use", "in_reply_to": message.id or None},
            )
            return
        request: LogsRequest | ExecRequest | StatsRequest | JobRequest
        try:
            if message.type in JOB_KINDS:
                if self.jobs is None:
                    raise InvalidInput("this agent runs no image jobs", field="type")
                request = JobRequest(request_id, message.type, dict(message.data))
            elif message.type == protocol.LOGS:
                request = parse_logs(message.data)
            elif message.type == protocol.STATS:
                request = parse_stats(message.data)
            else:
                request = parse_exec(message.data)
        except InvalidInput as exc:
            await self._end(request_id, None, f"invalid {message.type} request: {exc.message}")
            return
        if len(self._streams) >= self._limit:
            await self._end(
                request_id, None, f"this host already runs {self._limit} logs/exec streams; try again when one ends"
            )
            return
        takes_input = (isinstance(request, ExecRequest) and (request.interactive or request.tty)) or (
            isinstance(request, JobRequest) and request.kind == protocol.LOAD
        )
        stream = _Stream(request_id, asyncio.get_running_loop(), takes_input=takes_input)
        self._streams[request_id] = stream
        stream.task = asyncio.create_task(self._pump(stream), name=f"stream-{request_id}")
        threading.Thread(
            target=self._read, args=(stream, request), name=f"stream-{request_id[:12]}", daemon=True
        ).start()
        log.debug("request %s: %s", request_id, request)

    async def _end(self, request_id: str, exit_code: int | None, error: str | None) -> None:
        await self._send(protocol.END, {"request_id": request_id, "exit_code": exit_code, "error": error})

    # -- the sending task (event loop)

    async def _pump(self, stream: _Stream) -> None:
        try:
            while True:
                batch = await stream.next_batch()
                outputs = [item for item in batch if not isinstance(item, _End)]
                for name, data in coalesce(outputs):
                    await stream.resumed.wait()
                    await self._send(
                        protocol.OUTPUT,
                        {"request_id": stream.request_id, "stream": name, "data": base64.b64encode(data).decode()},
                    )
                end = next((item for item in batch if isinstance(item, _End)), None)
                if end is not None:
                    await self._end(stream.request_id, end.exit_code, end.error)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the websocket is gone; the session closes everything
            log.debug("request %s: cannot send (%r); stopping it", stream.request_id, exc)
            stream.halt(dropped=True)
        finally:
            if self._streams.get(stream.request_id) is stream:
                del self._streams[stream.request_id]

    # -- the reader thread

    def _read(self, stream: _Stream, request: LogsRequest | ExecRequest | StatsRequest | JobRequest) -> None:
        exit_code: int | None = None
        error: str | None = None
        try:
            if isinstance(request, LogsRequest):
                self._read_logs(stream, request)
            elif isinstance(request, StatsRequest):
                self._read_stats(stream, request)
            else:
                exit_code = self._read_exec(stream, request)
        except _Dropped:
            return
        except CorralError as exc:
            error = exc.message
        except Exception as exc:  # a bug must end one stream with a clear error, never the agent
            log.exception("request %s failed", stream.request_id)
            error = f"the agent failed: {exc!r}"
        if stream.cancelled:
            exit_code, error = None, stream.failure or CANCELLED
        with contextlib.suppress(_Dropped):
            stream.finish(exit_code, error)

    def _read_logs(self, stream: _Stream, request: LogsRequest) -> None:
        output = self.source.logs(
            request.docker_id,
            follow=request.follow,
            tail=request.tail,
            timestamps=request.timestamps,
            stop=stream.stop,
            since=request.since,
        )
        try:
            for name, data in output:
                stream.emit(name, data)
        finally:
            close = getattr(output, "close", None)
            if close is not None:
                close()

    def _read_stats(self, stream: _Stream, request: StatsRequest) -> None:
        samples = self.source.stats(request.docker_id, stream=request.stream, stop=stream.stop)
        try:
            for sample in samples:
                stream.emit(STATS_STREAM, json.dumps(sample).encode() + b"\n")
        finally:
            close = getattr(samples, "close", None)
            if close is not None:
                close()

    def _read_exec(self, stream: _Stream, request: ExecRequest | JobRequest) -> int | None:
        if stream.stop.is_set():
            return None
        if isinstance(request, JobRequest):
            assert self.jobs is not None
            handle = self.jobs(request.kind, request.data)
        else:
            handle = self.source.exec_run(
                request.docker_id, request.cmd, tty=request.tty, interactive=request.interactive
            )
        try:
            if not stream.attach(handle):
                return None
            if stream.takes_input:
                threading.Thread(
                    target=_control, args=(stream, handle), name=f"stdin-{stream.request_id[:12]}", daemon=True
                ).start()
            for name, data in handle.read():
                stream.emit(name, data)
            return None if stream.stop.is_set() else handle.exit_code()
        finally:
            stream.controls.put(None)
            handle.close()


def _control(stream: _Stream, handle: ExecHandle) -> None:
    """The exec's control thread: stdin, eof and resizes in the order they came, until the stream ends."""
    while (item := stream.controls.get()) is not None:
        try:
            if item[0] == "stdin":
                handle.write(item[1])
                stream.stdin_written(len(item[1]))
            elif item[0] == "eof":
                handle.close_stdin()
            elif item[0] == "resize":
                handle.resize(item[1], item[2])
        except CorralError as exc:  # e.g. the process ended and stopped reading
            log.debug("request %s: %s failed: %s", stream.request_id, item[0], exc.message)
