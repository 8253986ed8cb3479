"""Byte streams out of (and into) containers on one Docker engine: a container's logs, and commands run in it (exec).

Why its own module: both are long-lived, blocking reads on a connection of their own that must stay out of the
engine monitor's single worker thread, must keep stdout and stderr apart, and must be stoppable from another
thread at any moment (a blocked read returns when the stream is stopped). The caller (the agent) runs each stream
on a thread of its own.

Wire details of the Docker API handled here:
  * Without a tty, the engine multiplexes stdout and stderr on one byte stream: every frame starts with an 8-byte
    header ``[stream, 0, 0, 0, size (4 bytes, big endian)]`` (stream 0 stdin, 1 stdout, 2 stderr, 3 the engine's
    own error output). `FrameDemuxer` parses it incrementally. With a tty, there are no frames: everything is
    the terminal's output, reported as stdout.
  * The logs endpoint answers with a chunked HTTP body; exec's start endpoint upgrades the connection to a raw,
    bidirectional socket. The docker SDK's public API loses the stream of each log frame and reads exec's socket
    past the HTTP client's buffer, so this module uses the low-level client's request helpers (`_get`, `_url`,
    `_post_json`, `_raise_for_status`, as the SDK's own `exec_start` does) and reads the bodies itself.

Errors: `NotFound` ("container X does not exist on this host"), `Conflict` (the engine refuses because of the
container's state, e.g. exec in a stopped container), `EngineRejected` (any other refusal, e.g. a logging driver
that cannot be read), `InvalidInput` (an empty command, a malformed name), `Unavailable` (the engine is not
reachable, or a stream broke off).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import docker
import docker.errors

from corral.model.errors import Conflict, InvalidInput, Unavailable
from corral.runtime.containers import short
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.stats import container_stats
from corral.runtime.streamed_responses import (
    READ_ERRORS,
    READ_SIZE,
    body_chunks,
    check_reference,
    close_response,
    closed_on_stop,
    missing_container,
    raise_refusal,
    response_socket,
    shutdown_socket,
)

log = logging.getLogger(__name__)

STDOUT = "stdout"
STDERR = "stderr"
HEADER_SIZE = 8
EXIT_WAIT_SECONDS = 2.0  # how long `exit_code` waits for the engine to notice an exec's process ended
EOT = b"\x04"  # ^D: end of input on a terminal
_STREAMS = {0: STDOUT, 1: STDOUT, 2: STDERR, 3: STDERR}


class MalformedStream(ValueError):
    """Bytes that are not Docker's multiplexed stream format."""


class FrameDemuxer:
    """Incremental parser of Docker's multiplexed stdout/stderr stream.

    `feed` takes bytes as they arrive (any split, even inside a header) and returns the payload read so far as
    ``(stream, bytes)`` pieces, in order, adjacent pieces of the same stream joined. A frame's payload is returned
    as it arrives, without waiting for the whole frame; empty frames are skipped.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._stream = STDOUT
        self._left = 0  # payload bytes of the current frame still to come

    @property
    def pending(self) -> bool:
        """Whether the data fed so far ends inside a frame (a truncated stream, if it ends here)."""
        return bool(self._header) or self._left > 0

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        pieces: list[tuple[str, bytearray]] = []
        view = memoryview(data)
        position, size = 0, len(data)
        while position < size:
            if self._left == 0:
                take = min(HEADER_SIZE - len(self._header), size - position)
                self._header += view[position : position + take]
                position += take
                if len(self._header) < HEADER_SIZE:
                    break
                kind, pad1, pad2, pad3, length = struct.unpack(">BBBBL", self._header)
                if kind not in _STREAMS or pad1 or pad2 or pad3:
                    raise MalformedStream(f"not a multiplexed stream (frame header {bytes(self._header).hex()})")
                self._header.clear()
                self._stream, self._left = _STREAMS[kind], length
                continue
            take = min(self._left, size - position)
            piece = view[position : position + take]
            position += take
            self._left -= take
            if pieces and pieces[-1][0] == self._stream:
                pieces[-1][1].extend(piece)
            else:
                pieces.append((self._stream, bytearray(piece)))
        return [(stream, bytes(chunk)) for stream, chunk in pieces]


class ExecSession:
    """One running exec: its output (`read`), its input (`write`, `close_stdin`), its terminal size, its exit code.

    `read` belongs to one thread; `write`, `close_stdin` and `resize` may be called from one other thread, and
    `close` from any. Made by `ContainerStreams.exec_run`.
    """

    def __init__(
        self,
        engine: DockerEngine,
        *,
        exec_id: str,
        response: Any,
        tty: bool,
        interactive: bool,
        container: str,
    ) -> None:
        self.exec_id = exec_id
        self.tty = tty
        self.interactive = interactive
        self.container = container
        self._engine = engine
        self._response = response
        self._reader = response.raw._fp.fp  # the HTTP client's buffered reader: it may already hold output
        self._socket = response_socket(response)
        if self._socket is not None:
            self._socket.settimeout(None)  # an exec may print nothing for hours
        self._closed = threading.Event()
        self._stdin_closed = not interactive
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()  # between `read` starting/ending and `close`
        self._reading = False
        self._released = False

    def read(self) -> Iterator[tuple[str, bytes]]:
        """Block for output: ``(stdout|stderr, bytes)`` until the process ends (its output closes) or `close`."""
        with self._state_lock:
            if self._closed.is_set():
                self._release()
                return
            self._reading = True
        demuxer = None if self.tty else FrameDemuxer()
        try:
            while not self._closed.is_set():
                try:
                    data = self._reader.read1(READ_SIZE)
                except READ_ERRORS as exc:
                    if self._closed.is_set():
                        return
                    raise Unavailable(f"the output of exec in {self.container} broke off: {exc}") from exc
                if not data:
                    return
                if demuxer is None:
                    yield STDOUT, data
                    continue
                try:
                    pieces = demuxer.feed(data)
                except MalformedStream as exc:
                    raise Unavailable(f"the output of exec in {self.container} is garbled: {exc}") from exc
                yield from pieces
        finally:
            self._closed.set()  # the process's output ended: there is nothing left to write to or resize
            self._stdin_closed = True
            with self._state_lock:
                self._reading = False
                self._release()

    def write(self, data: bytes) -> None:
        """Send `data` to the process's stdin (blocks while the process does not read). Ignored without stdin."""
        if not data:
            return
        with self._write_lock:
            if self._stdin_closed or self._socket is None:
                return
            try:
                self._socket.sendall(data)
            except OSError as exc:
                raise Unavailable(f"cannot write to exec in {self.container}: {exc}") from exc

    def close_stdin(self) -> None:
        """End the process's input: EOF on a pipe; with a tty, a ^D (the terminal's end of input). Idempotent."""
        with self._write_lock:
            if self._stdin_closed or self._socket is None:
                return
            self._stdin_closed = True
            try:
                if self.tty:
                    self._socket.sendall(EOT)
                else:
                    self._socket.shutdown(socket.SHUT_WR)
            except OSError as exc:
                raise Unavailable(f"cannot close the input of exec in {self.container}: {exc}") from exc

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size (a no-op without a tty, or once `read` has ended)."""
        if not self.tty or self._closed.is_set():
            return
        if not (0 < rows <= 65535 and 0 < cols <= 65535):
            raise InvalidInput(f"terminal size {rows}x{cols} is out of range", field="rows")

        def resize(client: docker.DockerClient) -> None:
            try:
                client.api.exec_resize(self.exec_id, height=rows, width=cols)
            except docker.errors.NotFound:
                raise Conflict(f"the exec in {self.container} has ended", field="rows") from None
            except docker.errors.APIError as exc:
                raise_refusal(exc, self.container, "resize the terminal of exec in")

        self._engine.call(f"resize exec in {self.container}", resize)

    def exit_code(self) -> int | None:
        """The process's exit code once it has ended; None if it still runs (e.g. after `close`) or is unknown."""
        deadline = time.monotonic() + EXIT_WAIT_SECONDS
        while True:
            try:
                info: dict[str, Any] = self._engine.call(
                    f"inspect exec in {self.container}", lambda c: c.api.exec_inspect(self.exec_id)
                )
            except docker.errors.NotFound:
                return None
            code = info.get("ExitCode")
            if not info.get("Running") and isinstance(code, int):
                return code
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def close(self) -> None:
        """Stop reading and writing; callable from any thread, never blocks (a blocked `read` returns soon).

        The process is not killed: Docker offers no way to, and it gets EOF on stdin and SIGPIPE when it writes.
        The connection is released by `read` when it ends, or here if no `read` runs.
        """
        self._closed.set()
        self._stdin_closed = True
        shutdown_socket(self._socket)
        with self._state_lock:
            if not self._reading:
                self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            shutdown_socket(self._socket)
            close_response(self._response)


class ContainerStreams:
    """Logs and exec on the containers of one engine. Safe for many threads (one stream each)."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.close()

    # -- logs

    def logs(
        self,
        docker_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        stop: threading.Event,
        since: float | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        """A container's log as a blocking iterator of ``(stdout|stderr, bytes)``.

        Opens the stream before returning (so a missing container raises `NotFound` here, not while iterating).
        The iterator ends at the end of the log (no `follow`), when the container stops (`follow`), or soon after
        `stop` is set from another thread; it raises `Unavailable` if the stream breaks off otherwise. `tail` is
        the number of lines from the end to start with (None: the whole log).
        """
        reference = check_reference(docker_id)
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise InvalidInput("tail must be an integer >= 0", field="tail")
        params = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(bool(follow)),
            "timestamps": int(bool(timestamps)),
            "tail": "all" if tail is None else tail,
        }
        if since is not None:  # the engine takes seconds with a fraction ("1700000000.5")
            if isinstance(since, bool) or not isinstance(since, int | float) or since < 0:
                raise InvalidInput("since must be a UNIX time >= 0", field="since")
            params["since"] = f"{since:.6f}"

        def open_logs(client: docker.DockerClient) -> tuple[Any, bool]:
            api = client.api
            try:
                info = api.inspect_container(reference)
            except docker.errors.NotFound:
                raise missing_container(reference) from None
            tty = bool((info.get("Config") or {}).get("Tty"))
            response = api._get(api._url("/containers/{0}/logs", str(info["Id"])), params=params, stream=True)
            try:
                api._raise_for_status(response)
            except docker.errors.APIError as exc:
                close_response(response)
                raise_refusal(exc, reference, "read the logs of")
            return response, tty

        response, tty = self.engine.call(f"read the logs of {reference}", open_logs)
        return self._read_logs(response, tty, stop, reference)

    def _read_logs(
        self, response: Any, tty: bool, stop: threading.Event, reference: str
    ) -> Iterator[tuple[str, bytes]]:
        demuxer = None if tty else FrameDemuxer()
        with closed_on_stop(response, stop, "docker-logs-closer"):
            try:
                for chunk in body_chunks(response):
                    if stop.is_set():
                        return
                    if demuxer is None:
                        yield STDOUT, chunk
                    else:
                        yield from demuxer.feed(chunk)
            except READ_ERRORS as exc:
                if stop.is_set():
                    return
                raise Unavailable(
                    f"docker engine at {self.engine.docker_host}: the logs of {reference} broke off: {exc}"
                ) from exc

    # -- stats

    def stats(self, docker_id: str, *, stream: bool, stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Resource-use samples of a container (runtime/stats.py)."""
        return container_stats(self.engine, docker_id, stream=stream, stop=stop)

    # -- exec

    def exec_run(
        self, docker_id: str, cmd: Sequence[str], *, tty: bool = False, interactive: bool = False
    ) -> ExecSession:
        """Start `cmd` in a running container, attached to its output (and its input if `interactive`).

        Without `interactive` the process gets no stdin at all (it reads EOF at once).
        """
        reference = check_reference(docker_id)
        command = list(cmd)
        if not command or not all(isinstance(part, str) for part in command):
            raise InvalidInput("cmd must be a non-empty list of strings", field="cmd")

        def start(client: docker.DockerClient) -> tuple[str, Any]:
            api = client.api
            try:
                created = api.exec_create(reference, command, stdout=True, stderr=True, stdin=interactive, tty=tty)
            except docker.errors.APIError as exc:
                raise_refusal(exc, reference, "exec in")
            exec_id = str(created["Id"])
            response = api._post_json(
                api._url("/exec/{0}/start", exec_id),
                headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                data={"Tty": tty, "Detach": False},
                stream=True,
            )
            try:
                api._raise_for_status(response)
            except docker.errors.APIError as exc:
                close_response(response)
                raise_refusal(exc, reference, "exec in")
            return exec_id, response

        exec_id, response = self.engine.call(f"exec in {reference}", start)
        session = ExecSession(
            self.engine, exec_id=exec_id, response=response, tty=tty, interactive=interactive, container=reference
        )
        log.debug("exec %s in %s: %s", short(exec_id), reference, command)
        return session
