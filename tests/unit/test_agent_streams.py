"""The agent's stream handling without an engine: message checks, output coalescing, and the StreamManager run
against a fake runtime (ordering, one `end` per request, cancel, stdin routing, the stream limit, backpressure,
and a dropped connection)."""

from __future__ import annotations

import asyncio
import base64
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from corral.agent.streams import (
    CANCELLED,
    MAX_STDIN_BYTES,
    OUTBOX_BYTES,
    ExecRequest,
    LogsRequest,
    StreamManager,
    coalesce,
    parse_exec,
    parse_logs,
    parse_resize,
    parse_stdin,
)
from corral.model import protocol
from corral.model.errors import InvalidInput, NotFound

# -- checks


def test_logs_requests_are_checked() -> None:
    assert parse_logs({"request_id": "r1", "docker_id": "abc"}) == LogsRequest("r1", "abc")
    full = {"request_id": "r1", "docker_id": "abc", "follow": True, "tail": 0, "timestamps": True}
    assert parse_logs(full) == LogsRequest("r1", "abc", follow=True, tail=0, timestamps=True)
    assert parse_logs({**full, "tail": None}).tail is None
    for bad, field in [
        ({"docker_id": "abc"}, "request_id"),
        ({"request_id": 7, "docker_id": "abc"}, "request_id"),
        ({"request_id": "", "docker_id": "abc"}, "request_id"),
        ({"request_id": "r" * 129, "docker_id": "abc"}, "request_id"),
        ({"request_id": "r1"}, "docker_id"),
        ({"request_id": "r1", "docker_id": ""}, "docker_id"),
        ({"request_id": "r1", "docker_id": ["abc"]}, "docker_id"),
        ({**full, "tail": -1}, "tail"),
        ({**full, "tail": "10"}, "tail"),
        ({**full, "tail": True}, "tail"),
        ({**full, "tail": 1.5}, "tail"),
        ({**full, "follow": "yes"}, "follow"),
        ({**full, "timestamps": 1}, "timestamps"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            parse_logs(bad)
        assert caught.value.field == field, bad


def test_exec_requests_are_checked() -> None:
    data = {"request_id": "r1", "docker_id": "abc", "cmd": ["sh", "-c", "echo hi"], "tty": True, "interactive": True}
    assert parse_exec(data) == ExecRequest("r1", "abc", ("sh", "-c", "echo hi"), tty=True, interactive=True)
    assert parse_exec({**data, "tty": None, "interactive": None}) == ExecRequest("r1", "abc", ("sh", "-c", "echo hi"))
    for cmd in [[], "echo hi", None, ["echo", 1], [None]]:
        with pytest.raises(InvalidInput, match="cmd must be a non-empty list of strings"):
            parse_exec({**data, "cmd": cmd})
    with pytest.raises(InvalidInput, match="tty must be true or false"):
        parse_exec({**data, "tty": "true"})


def test_stdin_and_resize_are_checked() -> None:
    assert parse_stdin({"data": base64.b64encode(b"hi\n").decode()}) == (b"hi\n", False)
    assert parse_stdin({"data": "", "eof": True}) == (b"", True)
    assert parse_stdin({"eof": True}) == (b"", True)
    for bad in [{"data": "not base64!"}, {"data": 12}, {"data": "aGk=", "eof": "yes"}]:
        with pytest.raises(InvalidInput):
            parse_stdin(bad)
    assert parse_resize({"rows": 24, "cols": 80}) == (24, 80)
    for bad in [{"rows": 0, "cols": 80}, {"rows": 24}, {"rows": True, "cols": 80}, {"rows": 24, "cols": 70000}]:
        with pytest.raises(InvalidInput):
            parse_resize(bad)


def test_coalesce_joins_neighbours_and_cuts_to_the_limit() -> None:
    pieces = [("stdout", b"ab"), ("stdout", b"cd"), ("stderr", b"e"), ("stderr", b""), ("stdout", b"f")]
    assert coalesce(pieces) == [("stdout", b"abcd"), ("stderr", b"e"), ("stdout", b"f")]
    assert coalesce([("stdout", b"abcdefg"), ("stdout", b"h")], limit=3) == [
        ("stdout", b"abc"),
        ("stdout", b"def"),
        ("stdout", b"gh"),
    ]
    big = bytes(protocol.MAX_OUTPUT_CHUNK * 2 + 1)
    assert [len(data) for _, data in coalesce([("stdout", big)])] == [protocol.MAX_OUTPUT_CHUNK] * 2 + [1]


# -- the manager, against a fake runtime


class FakeExec:
    def __init__(self, outputs: Sequence[tuple[str, bytes]], code: int | None, echo: bool) -> None:
        self.queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        for item in outputs:
            self.queue.put(item)
        if not echo:
            self.queue.put(None)
        self.code = code
        self.echo = echo
        self.written: list[bytes] = []
        self.sizes: list[tuple[int, int]] = []
        self.closed = threading.Event()
        self.deaf = False

    def read(self) -> Iterator[tuple[str, bytes]]:
        while (item := self.queue.get()) is not None and not self.closed.is_set():
            yield item

    def write(self, data: bytes) -> None:
        if self.deaf:  # a process that never reads its stdin: the write blocks until the exec is closed
            self.closed.wait()
            return
        self.written.append(data)
        if self.echo:
            self.queue.put(("stdout", data))

    def close_stdin(self) -> None:
        self.queue.put(None)

    def resize(self, rows: int, cols: int) -> None:
        self.sizes.append((rows, cols))

    def exit_code(self) -> int | None:
        return self.code

    def close(self) -> None:
        self.closed.set()
        self.queue.put(None)


class FakeSource:
    """Containers "web" (a log of a few lines) and "noisy" (endless output); anything else does not exist."""

    def __init__(self) -> None:
        self.execs: list[FakeExec] = []
        self.produced = 0
        self.stopped: list[threading.Event] = []

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
        if docker_id == "boom":
            raise RuntimeError("a bug")
        if docker_id not in ("web", "noisy"):
            raise NotFound(f"container {docker_id} does not exist on this host")
        self.stopped.append(stop)
        return self._lines(docker_id, follow, tail, stop)

    def _lines(
        self, docker_id: str, follow: bool, tail: int | None, stop: threading.Event
    ) -> Iterator[tuple[str, bytes]]:
        if docker_id == "noisy":
            while not stop.is_set():
                self.produced += 1000
                yield "stdout", b"x" * 1000
            return
        lines = [("stdout", b"out1\n"), ("stderr", b"err1\n"), ("stdout", b"out2\n"), ("stdout", b"out3\n")]
        yield from lines[-tail:] if tail else lines
        if follow:
            stop.wait()

    def stats(self, docker_id: str, *, stream: bool, stop: threading.Event) -> Iterator[dict[str, Any]]:
        if docker_id != "web":
            raise NotFound(f"container {docker_id} does not exist on this host")
        return iter([{"cpu_percent": 1.5}, {"cpu_percent": 2.5}] if stream else [{"cpu_percent": 1.5}])

    def exec_run(self, docker_id: str, cmd: Sequence[str], *, tty: bool, interactive: bool) -> FakeExec:
        if docker_id != "web":
            raise NotFound(f"container {docker_id} does not exist on this host")
        if cmd[0] in ("cat", "deaf"):
            handle = FakeExec([], 0, echo=True)
            handle.deaf = cmd[0] == "deaf"
        else:
            handle = FakeExec([("stdout", b"out\n"), ("stderr", b"err\n")], 3, echo=False)
        self.execs.append(handle)
        return handle


class Wire:
    """What the manager sends, as the session's `_send` would; `block` holds sends back (a slow websocket)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.broken = False

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        await self.open.wait()
        if self.broken:
            raise ConnectionError("websocket closed")
        self.sent.append((kind, data))

    def of(self, request_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, data) for kind, data in self.sent if data.get("request_id") == request_id]

    def output(self, request_id: str, stream: str = "stdout") -> bytes:
        return b"".join(
            base64.b64decode(data["data"])
            for kind, data in self.of(request_id)
            if kind == protocol.OUTPUT and data["stream"] == stream
        )

    def end(self, request_id: str) -> dict[str, Any] | None:
        ends = [data for kind, data in self.of(request_id) if kind == protocol.END]
        assert len(ends) <= 1, ends
        return ends[0] if ends else None


def message(kind: str, **data: Any) -> protocol.Message:
    return protocol.Message(kind, data)


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def run(test: Callable[[StreamManager, Wire, FakeSource], Awaitable[None]], *, limit: int = 32) -> None:
    async def main() -> None:
        source, wire = FakeSource(), Wire()
        manager = StreamManager(source, wire.send, limit=limit)
        try:
            await asyncio.wait_for(test(manager, wire, source), timeout=10)
        finally:
            await manager.close()

    asyncio.run(main())


def test_logs_arrive_per_stream_and_end_last() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.LOGS, request_id="r1", docker_id="web", follow=False))
        await until(lambda: wire.end("r1"))
        assert wire.output("r1") == b"out1\nout2\nout3\n"
        assert wire.output("r1", "stderr") == b"err1\n"
        assert wire.of("r1")[-1] == (protocol.END, {"request_id": "r1", "exit_code": None, "error": None})
        assert manager.active == 0

        await manager.handle(message(protocol.LOGS, request_id="r2", docker_id="web", tail=1))
        await until(lambda: wire.end("r2"))
        assert wire.output("r2") == b"out3\n" and wire.output("r2", "stderr") == b""

    run(test)


def test_stats_come_as_json_lines_and_end() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.STATS, request_id="s1", docker_id="web", stream=True))
        await until(lambda: wire.end("s1"))
        assert wire.output("s1", "stats") == b'{"cpu_percent": 1.5}\n{"cpu_percent": 2.5}\n'
        assert wire.end("s1") == {"request_id": "s1", "exit_code": None, "error": None}

        await manager.handle(message(protocol.STATS, request_id="s2", docker_id="gone"))
        await until(lambda: wire.end("s2"))
        assert (wire.end("s2") or {})["error"] == "container gone does not exist on this host"

        await manager.handle(message(protocol.STATS, request_id="s3", docker_id="web", stream="yes"))
        await until(lambda: wire.end("s3"))
        assert "stream must be true or false" in str(wire.end("s3"))

    run(test)


def test_exec_ends_with_its_exit_code() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.EXEC, request_id="e1", docker_id="web", cmd=["sh", "-c", "exit 3"]))
        await until(lambda: wire.end("e1"))
        assert wire.output("e1") == b"out\n" and wire.output("e1", "stderr") == b"err\n"
        assert wire.end("e1") == {"request_id": "e1", "exit_code": 3, "error": None}
        assert source.execs[0].closed.is_set()

    run(test)


def test_interactive_exec_gets_stdin_eof_and_resizes_in_order() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(
            message(protocol.EXEC, request_id="e1", docker_id="web", cmd=["cat"], interactive=True, tty=True)
        )
        await manager.handle(message(protocol.RESIZE, request_id="e1", rows=40, cols=120))
        await manager.handle(message(protocol.STDIN, request_id="e1", data=base64.b64encode(b"hi\n").decode()))
        await until(lambda: wire.output("e1") == b"hi\n")
        # Bad input for a running stream is reported, and the stream goes on; unknown ids are ignored quietly.
        await manager.handle(message(protocol.STDIN, request_id="e1", data="%%%"))
        assert wire.sent[-1][0] == protocol.ERROR and "base64" in wire.sent[-1][1]["message"]
        await manager.handle(message(protocol.RESIZE, request_id="e1", rows=-1, cols=80))
        assert wire.sent[-1][0] == protocol.ERROR and "rows" in wire.sent[-1][1]["message"]
        count = len(wire.sent)
        for kind in (protocol.STDIN, protocol.RESIZE, protocol.CANCEL):
            await manager.handle(message(kind, request_id="gone", data="", rows=1, cols=1))
        await manager.handle(message(protocol.CANCEL))
        assert len(wire.sent) == count
        await manager.handle(message(protocol.STDIN, request_id="e1", data=base64.b64encode(b"bye").decode(), eof=True))
        await until(lambda: wire.end("e1"))
        assert wire.output("e1") == b"hi\nbye"
        assert wire.end("e1") == {"request_id": "e1", "exit_code": 0, "error": None}
        assert source.execs[0].written == [b"hi\n", b"bye"]
        assert source.execs[0].sizes == [(40, 120)]

    run(test)


def test_stdin_for_a_stream_without_input_is_ignored() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.LOGS, request_id="r1", docker_id="web", follow=True))
        await until(lambda: wire.output("r1"))
        await manager.handle(message(protocol.STDIN, request_id="r1", data="%%%"))
        await manager.handle(message(protocol.RESIZE, request_id="r1", rows=1, cols=1))
        assert all(kind == protocol.OUTPUT for kind, _ in wire.sent)

    run(test)


def test_cancel_stops_a_follow_with_one_end() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.LOGS, request_id="r1", docker_id="web", follow=True))
        await until(lambda: wire.output("r1") == b"out1\nout2\nout3\n")
        await asyncio.sleep(0.05)
        assert wire.end("r1") is None and manager.active == 1
        await manager.handle(message(protocol.CANCEL, request_id="r1"))
        await until(lambda: wire.end("r1"))
        assert wire.end("r1") == {"request_id": "r1", "exit_code": None, "error": CANCELLED}
        assert source.stopped[0].is_set()
        await manager.handle(message(protocol.CANCEL, request_id="r1"))  # again: ignored
        await asyncio.sleep(0.05)
        assert wire.end("r1") is not None and manager.active == 0

    run(test)


def test_cancel_of_a_running_exec_closes_it() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.EXEC, request_id="e1", docker_id="web", cmd=["cat"], interactive=True))
        await until(lambda: source.execs)
        await manager.handle(message(protocol.CANCEL, request_id="e1"))
        await until(lambda: wire.end("e1"))
        assert wire.end("e1") == {"request_id": "e1", "exit_code": None, "error": CANCELLED}
        assert source.execs[0].closed.is_set()

    run(test)


def test_bad_requests_end_with_an_error_or_are_answered_with_one() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.EXEC, request_id="e1", docker_id="web", cmd=[]))
        assert wire.end("e1") == {
            "request_id": "e1",
            "exit_code": None,
            "error": "invalid exec request: cmd must be a non-empty list of strings",
        }
        await manager.handle(message(protocol.LOGS, request_id="r1", docker_id="web", tail=-5))
        assert "tail must be an integer >= 0" in (wire.end("r1") or {})["error"]
        await manager.handle(message(protocol.LOGS, request_id="r2", docker_id="nope"))
        await until(lambda: wire.end("r2"))
        assert wire.end("r2") == {
            "request_id": "r2",
            "exit_code": None,
            "error": "container nope does not exist on this host",
        }
        await manager.handle(message(protocol.EXEC, request_id="e2", docker_id="nope", cmd=["true"]))
        await until(lambda: wire.end("e2"))
        assert (wire.end("e2") or {})["error"] == "container nope does not exist on this host"
        await manager.handle(message(protocol.LOGS, request_id="r3", docker_id="boom"))
        await until(lambda: wire.end("r3"))
        assert "the agent failed" in (wire.end("r3") or {})["error"]
        # Without a request id there is nothing to end: an `error` message names the problem.
        await manager.handle(protocol.Message(protocol.LOGS, {"docker_id": "web"}, id="m-1"))
        assert wire.sent[-1] == (
            protocol.ERROR,
            {"message": "request_id must be a string of 1 to 128 characters", "in_reply_to": "m-1"},
        )
        # A request id already running is not started again, and the running stream is not ended.
        await manager.handle(message(protocol.LOGS, request_id="f1", docker_id="web", follow=True))
        await manager.handle(protocol.Message(protocol.LOGS, {"request_id": "f1", "docker_id": "web"}, id="m-2"))
        assert wire.sent[-1][0] == protocol.ERROR and "already in use" in wire.sent[-1][1]["message"]
        await asyncio.sleep(0.05)
        assert wire.end("f1") is None and manager.active == 1

    run(test)


def test_streams_beyond_the_limit_are_refused() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        for number in range(2):
            await manager.handle(message(protocol.LOGS, request_id=f"f{number}", docker_id="web", follow=True))
        await manager.handle(message(protocol.LOGS, request_id="f2", docker_id="web", follow=True))
        assert wire.end("f2") == {
            "request_id": "f2",
            "exit_code": None,
            "error": "this host already runs 2 logs/exec streams; try again when one ends",
        }
        await manager.handle(message(protocol.CANCEL, request_id="f0"))
        await until(lambda: manager.active == 1)
        await manager.handle(message(protocol.LOGS, request_id="f3", docker_id="web"))
        await until(lambda: wire.end("f3"))
        assert wire.end("f3") == {"request_id": "f3", "exit_code": None, "error": None}

    run(test, limit=2)


def test_a_slow_websocket_holds_the_reader_back_and_loses_nothing() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        wire.open.clear()  # nothing can be sent
        await manager.handle(message(protocol.LOGS, request_id="n1", docker_id="noisy", follow=True))
        await asyncio.sleep(0.3)
        held = source.produced
        # Read, at most: a full outbox (overshooting by one read), the batch being sent, and one read waiting.
        assert held <= 2 * (OUTBOX_BYTES + 1000) + 1000
        await asyncio.sleep(0.1)
        assert source.produced == held  # the reader waits
        wire.open.set()
        await until(lambda: len(wire.output("n1")) > 4 * OUTBOX_BYTES)
        await manager.handle(message(protocol.CANCEL, request_id="n1"))
        await until(lambda: wire.end("n1"))
        outputs = [data for kind, data in wire.of("n1") if kind == protocol.OUTPUT]
        assert all(len(base64.b64decode(data["data"])) <= protocol.MAX_OUTPUT_CHUNK for data in outputs)
        assert len(outputs) < source.produced // 1000  # small reads were joined
        assert len(wire.output("n1")) == source.produced  # every byte read was sent, before the end
        assert wire.of("n1")[-1][0] == protocol.END

    run(test)


def test_closing_stops_every_stream_and_sends_nothing_more() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.LOGS, request_id="f1", docker_id="web", follow=True))
        await manager.handle(message(protocol.EXEC, request_id="e1", docker_id="web", cmd=["cat"], interactive=True))
        await manager.handle(message(protocol.LOGS, request_id="n1", docker_id="noisy", follow=True))
        await until(lambda: len(source.stopped) == 2 and source.execs and wire.output("n1"))
        wire.open.clear()  # a send in flight when the connection drops
        await manager.close()
        count = len(wire.sent)
        assert all(stop.is_set() for stop in source.stopped)
        assert source.execs[0].closed.is_set()
        assert manager.active == 0
        wire.open.set()
        await asyncio.sleep(0.2)
        assert len(wire.sent) == count
        assert not [kind for kind, _ in wire.sent if kind == protocol.END]
        await manager.handle(message(protocol.LOGS, request_id="late", docker_id="web"))
        assert manager.active == 0

    run(test)


def test_a_failing_send_stops_the_stream() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        wire.broken = True
        await manager.handle(message(protocol.LOGS, request_id="n1", docker_id="noisy", follow=True))
        await until(lambda: manager.active == 0)
        await until(lambda: source.stopped and source.stopped[0].is_set())

    run(test)


def test_pause_holds_one_stream_back_and_resume_lets_it_go_on() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.LOGS, request_id="n1", docker_id="noisy", follow=True))
        await until(lambda: len(wire.output("n1")) > 0)
        await manager.handle(message(protocol.PAUSE, request_id="n1"))
        await asyncio.sleep(0.1)
        sent, produced = len(wire.output("n1")), source.produced
        await asyncio.sleep(0.2)
        assert len(wire.output("n1")) - sent <= 2 * OUTBOX_BYTES, "a paused stream sends at most what was in hand"
        assert source.produced - produced <= 2 * OUTBOX_BYTES, "and its reader waits"
        await manager.handle(message(protocol.LOGS, request_id="w1", docker_id="web"))
        await until(lambda: wire.end("w1"))  # another stream of the connection is not held back
        await manager.handle(message(protocol.RESUME, request_id="n1"))
        await until(lambda: len(wire.output("n1")) > sent + 4 * OUTBOX_BYTES)
        await manager.handle(message(protocol.PAUSE, request_id="n1"))
        await manager.handle(message(protocol.CANCEL, request_id="n1"))  # a cancel ends even a paused stream
        await until(lambda: wire.end("n1"))
        assert (wire.end("n1") or {})["error"] == CANCELLED

    run(test)


def test_stdin_a_process_does_not_read_is_bounded() -> None:
    async def test(manager: StreamManager, wire: Wire, source: FakeSource) -> None:
        await manager.handle(message(protocol.EXEC, request_id="d1", docker_id="web", cmd=["deaf"], interactive=True))
        piece = base64.b64encode(b"x" * 65536).decode()
        for _ in range(MAX_STDIN_BYTES // 65536 + 2):
            await manager.handle(message(protocol.STDIN, request_id="d1", data=piece))
        await until(lambda: wire.end("d1"))
        error = (wire.end("d1") or {})["error"]
        assert f"more than {MAX_STDIN_BYTES} bytes of stdin waited" in error

    run(test)
