"""Image jobs (`build`, `save`, `load`) ride the agent's stream machinery: output then one `end`, a load's input as
`stdin` up to eof, a failure's message in the `end`, and an agent without jobs refuses them with a reason.
(The jobs against a real engine: tests/integration/test_builds.py.)"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

from test_agent_streams import FakeSource, Wire, message, until

from corral.agent.builds import ImageJobs
from corral.agent.streams import ExecHandle, StreamManager
from corral.model import protocol
from corral.model.errors import CorralError
from corral.runtime.docker_engine import DockerEngine


class FakeJob:
    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        self.kind, self.data = kind, data
        self.written: list[bytes] = []
        self._eof = threading.Event()

    def read(self) -> Iterator[tuple[str, bytes]]:
        if self.kind == protocol.BUILD:
            yield "stdout", b"Step 1/2 : FROM corral/busybox\n"
            if self.data.get("fail"):
                raise CorralError("Step 2/2 : RUN exit 3: returned a non-zero code: 3")
            yield "stdout", b"Successfully built\n"
        elif self.kind == protocol.LOAD:
            self._eof.wait(5)
            yield "ack", f"{sum(len(w) for w in self.written)}\n".encode()

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close_stdin(self) -> None:
        self._eof.set()

    def resize(self, rows: int, cols: int) -> None:
        return None

    def exit_code(self) -> int | None:
        return 0

    def close(self) -> None:
        self._eof.set()


def run_jobs(test: Any, *, with_jobs: bool = True) -> list[FakeJob]:
    jobs: list[FakeJob] = []

    def factory(kind: str, data: dict[str, Any]) -> ExecHandle:
        jobs.append(FakeJob(kind, data))
        return jobs[-1]

    async def main() -> None:
        wire = Wire()
        manager = StreamManager(FakeSource(), wire.send, jobs=factory if with_jobs else None)
        try:
            await asyncio.wait_for(test(manager, wire), timeout=10)
        finally:
            await manager.close()

    asyncio.run(main())
    return jobs


def test_a_build_streams_its_lines_and_a_failure_ends_with_the_step() -> None:
    async def test(manager: StreamManager, wire: Wire) -> None:
        await manager.handle(message(protocol.BUILD, request_id="b1", image="corral-build/a-b:1"))
        await manager.handle(message(protocol.BUILD, request_id="b2", image="corral-build/a-b:1", fail=True))
        await until(lambda: wire.end("b1") and wire.end("b2"))
        assert wire.output("b1") == b"Step 1/2 : FROM corral/busybox\nSuccessfully built\n"
        assert wire.end("b1") == {"request_id": "b1", "exit_code": 0, "error": None}
        assert wire.end("b2") == {
            "request_id": "b2",
            "exit_code": None,
            "error": "Step 2/2 : RUN exit 3: returned a non-zero code: 3",
        }

    run_jobs(test)


def test_a_load_takes_stdin_until_eof_and_acknowledges() -> None:
    async def test(manager: StreamManager, wire: Wire) -> None:
        await manager.handle(message(protocol.LOAD, request_id="l1", image="corral-build/a-b:1"))
        for part in (b"tar-part-1", b"tar-part-2"):
            await manager.handle(message(protocol.STDIN, request_id="l1", data=base64.b64encode(part).decode()))
        await manager.handle(message(protocol.STDIN, request_id="l1", data="", eof=True))
        await until(lambda: wire.end("l1"))
        assert wire.output("l1", "ack") == b"20\n"
        assert wire.end("l1") == {"request_id": "l1", "exit_code": 0, "error": None}

    jobs = run_jobs(test)
    assert jobs[0].written == [b"tar-part-1", b"tar-part-2"]


def test_an_agent_without_jobs_and_bad_job_requests_end_with_a_reason() -> None:
    async def without(manager: StreamManager, wire: Wire) -> None:
        await manager.handle(message(protocol.SAVE, request_id="s1", image="corral-build/a-b:1"))
        await until(lambda: wire.end("s1"))
        assert "this agent runs no image jobs" in wire.end("s1")["error"]  # type: ignore[index]

    run_jobs(without, with_jobs=False)

    async def bad(manager: StreamManager, wire: Wire) -> None:
        await manager.handle(message(protocol.SAVE, request_id="s2", image="nginx:latest"))
        await until(lambda: wire.end("s2"))
        assert wire.end("s2")["error"] == "image 'nginx:latest' is not one Corral builds"  # type: ignore[index]

    async def bad_main() -> None:
        wire = Wire()
        manager = StreamManager(FakeSource(), wire.send, jobs=ImageJobs(DockerEngine("unix:///nonexistent.sock")))
        try:
            await asyncio.wait_for(bad(manager, wire), timeout=10)
        finally:
            await manager.close()

    asyncio.run(bad_main())


def test_a_removal_touches_only_images_corral_built_and_an_engine_failure_ends_with_its_reason() -> None:
    async def test(manager: StreamManager, wire: Wire) -> None:
        await manager.handle(message(protocol.REMOVE_IMAGE, request_id="r1", image="corral/busybox:latest"))
        await manager.handle(message(protocol.REMOVE_IMAGE, request_id="r2", image="corral-build/a-b:1"))
        await until(lambda: wire.end("r1") and wire.end("r2"))
        assert wire.end("r1")["error"] == "image 'corral/busybox:latest' is not one Corral builds"  # type: ignore[index]
        assert "failed to remove corral-build/a-b:1" in wire.end("r2")["error"]  # type: ignore[index,operator]

    async def main() -> None:
        wire = Wire()
        manager = StreamManager(FakeSource(), wire.send, jobs=ImageJobs(DockerEngine("unix:///nonexistent.sock")))
        try:
            await asyncio.wait_for(test(manager, wire), timeout=20)
        finally:
            await manager.close()

    asyncio.run(main())
