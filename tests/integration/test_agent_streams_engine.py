"""runtime/streams.py against the machine's real Docker engine: logs (stdout and stderr apart, tail, follow, stop,
a tty container) and exec (exit codes, stdin and EOF, a tty with a resize, cancel), and the errors for containers
that are missing or stopped.

Every container is made here with a unique name and `--network none`, and removed afterwards even on failure.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from corral.model.errors import Conflict, NotFound
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.streams import STDERR, STDOUT, ContainerStreams
from tests.integration.agent_harness import Throwaways
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST

pytestmark = pytest.mark.integration

TALK = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exec sleep 300"
Run = Callable[..., str]


@pytest.fixture(scope="module")
def run(prerequisites: None) -> Iterator[Run]:
    """Start a throwaway container running `sh -c SCRIPT`; its docker id. All are removed at the end."""
    containers = Throwaways(DOCKER_HOST, prefix=f"corral-test-streams-{secrets.token_hex(2)}")
    try:
        yield containers.run
    finally:
        containers.remove_all()


@pytest.fixture(scope="module")
def streams() -> Iterator[ContainerStreams]:
    streams = ContainerStreams(DockerEngine(DOCKER_HOST, timeout=20, pool_size=8))
    yield streams
    streams.close()


@pytest.fixture(scope="module")
def talker(run: Run, streams: ContainerStreams) -> str:
    """A running container that wrote two lines to stdout and two to stderr."""
    docker_id = run(TALK)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out, err = collect(streams.logs(docker_id, stop=threading.Event()))
        if out.count(b"\n") == 2 and err.count(b"\n") == 2:
            return docker_id
        time.sleep(0.05)
    raise AssertionError("the container's log never showed its four lines")


def collect(pieces: Iterator[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    out, err = bytearray(), bytearray()
    for stream, data in pieces:
        assert stream in (STDOUT, STDERR)
        (out if stream == STDOUT else err).extend(data)
    return bytes(out), bytes(err)


class Reader:
    """Consume an iterator of pieces on a thread of its own (as the agent does)."""

    def __init__(self, pieces: Iterator[tuple[str, bytes]]) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.error: BaseException | None = None
        self._pieces = pieces
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for stream, data in self._pieces:
                (self.out if stream == STDOUT else self.err).extend(data)
        except BaseException as exc:
            self.error = exc

    def wait_for(self, text: bytes, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out and time.monotonic() < deadline:
            time.sleep(0.02)
        assert text in self.out, bytes(self.out)

    def ended_within(self, seconds: float) -> bool:
        self.thread.join(seconds)
        return not self.thread.is_alive()


def test_logs_keep_stdout_and_stderr_apart(streams: ContainerStreams, talker: str) -> None:
    out, err = collect(streams.logs(talker, stop=threading.Event()))
    assert (out, err) == (b"out1\nout2\n", b"err1\nerr2\n")
    name = subprocess.run(
        ["docker", "-H", DOCKER_HOST, "inspect", "-f", "{{.Name}}", talker], capture_output=True, text=True, check=True
    ).stdout.strip("/\n")
    assert collect(streams.logs(name, stop=threading.Event())) == (out, err)  # by name too


def test_tail_and_timestamps(streams: ContainerStreams, run: Run) -> None:
    docker_id = run("for i in 1 2 3 4 5; do echo line$i; done; exec sleep 300")
    deadline = time.monotonic() + 10
    while b"line5" not in collect(streams.logs(docker_id, stop=threading.Event()))[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert collect(streams.logs(docker_id, tail=2, stop=threading.Event())) == (b"line4\nline5\n", b"")
    assert collect(streams.logs(docker_id, tail=0, stop=threading.Event())) == (b"", b"")
    out, _ = collect(streams.logs(docker_id, tail=1, timestamps=True, stop=threading.Event()))
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line5\n", out), out


def test_follow_streams_new_output_and_ends_soon_after_stop(streams: ContainerStreams, run: Run) -> None:
    docker_id = run("echo start; while sleep 0.1; do echo tick; done")
    deadline = time.monotonic() + 10  # "start" is written before the follow begins (a loaded engine starts late)
    while b"start" not in collect(streams.logs(docker_id, stop=threading.Event()))[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stop = threading.Event()
    reader = Reader(streams.logs(docker_id, follow=True, tail=0, stop=stop))
    reader.wait_for(b"tick\ntick\n")
    assert b"start" not in reader.out  # tail=0: only what came after
    started = time.monotonic()
    stop.set()
    assert reader.ended_within(2.0)
    assert time.monotonic() - started < 1.0
    assert reader.error is None


def test_follow_ends_when_the_container_stops(streams: ContainerStreams, run: Run) -> None:
    docker_id = run("echo running; exec sleep 300")
    reader = Reader(streams.logs(docker_id, follow=True, stop=threading.Event()))
    reader.wait_for(b"running\n")
    assert not reader.ended_within(0.2)
    subprocess.run(["docker", "-H", DOCKER_HOST, "kill", docker_id], capture_output=True, check=True)
    assert reader.ended_within(5.0)
    assert reader.error is None and bytes(reader.out) == b"running\n"


def test_a_tty_container_logs_everything_as_stdout(streams: ContainerStreams, run: Run) -> None:
    docker_id = run("echo to-out; echo to-err >&2; exec sleep 300", tty=True)
    deadline = time.monotonic() + 10
    while True:
        out, err = collect(streams.logs(docker_id, stop=threading.Event()))
        if b"to-err" in out or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert out == b"to-out\r\nto-err\r\n" and err == b""


def test_exec_output_and_exit_code(streams: ContainerStreams, talker: str) -> None:
    session = streams.exec_run(talker, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert collect(session.read()) == (b"out\n", b"err\n")
    assert session.exit_code() == 3
    # Without `interactive` there is no stdin: `cat` reads EOF at once.
    quiet = streams.exec_run(talker, ["cat"])
    assert collect(quiet.read()) == (b"", b"")
    assert quiet.exit_code() == 0


def test_interactive_exec_reads_stdin_until_eof(streams: ContainerStreams, talker: str) -> None:
    session = streams.exec_run(talker, ["cat"], interactive=True)
    reader = Reader(session.read())
    session.write(b"hello\n")
    reader.wait_for(b"hello\n")
    session.write(b"world")
    session.close_stdin()
    assert reader.ended_within(5.0)
    assert bytes(reader.out) == b"hello\nworld" and reader.error is None
    assert session.exit_code() == 0


def test_eof_on_a_terminal_is_its_end_of_input(streams: ContainerStreams, talker: str) -> None:
    session = streams.exec_run(talker, ["cat"], tty=True, interactive=True)
    reader = Reader(session.read())
    session.write(b"hi\n")
    reader.wait_for(b"hi\r\nhi\r\n")  # the terminal's echo, then cat's
    session.close_stdin()
    assert reader.ended_within(5.0)
    assert session.exit_code() == 0


def test_tty_exec_with_a_resize(streams: ContainerStreams, talker: str) -> None:
    session = streams.exec_run(talker, ["sh", "-c", "read line; stty size; exit 5"], tty=True, interactive=True)
    reader = Reader(session.read())
    session.resize(33, 99)
    session.write(b"go\n")
    reader.wait_for(b"33 99")
    assert reader.ended_within(5.0)
    assert reader.error is None and not reader.err  # a terminal has one output
    assert session.exit_code() == 5
    session.resize(10, 10)  # after the end: nothing happens
    streams.exec_run(talker, ["true"]).resize(20, 20)  # without a tty: nothing happens


def test_a_running_exec_is_cancelled_by_close(streams: ContainerStreams, talker: str) -> None:
    session = streams.exec_run(talker, ["sh", "-c", "echo started; exec sleep 30"])
    reader = Reader(session.read())
    reader.wait_for(b"started")
    started = time.monotonic()
    session.close()
    assert reader.ended_within(2.0)
    assert time.monotonic() - started < 1.0 and reader.error is None


def test_missing_and_stopped_containers(streams: ContainerStreams, run: Run) -> None:
    missing = f"corral-test-missing-{secrets.token_hex(4)}"
    with pytest.raises(NotFound, match=f"container {missing} does not exist on this host"):
        streams.logs(missing, stop=threading.Event())
    with pytest.raises(NotFound, match=f"container {missing} does not exist on this host"):
        streams.exec_run(missing, ["true"])
    stopped = run("exit 0")
    subprocess.run(["docker", "-H", DOCKER_HOST, "wait", stopped], capture_output=True, check=True, timeout=10)
    with pytest.raises(Conflict, match="is not running"):
        streams.exec_run(stopped, ["true"])
    assert collect(streams.logs(stopped, follow=True, stop=threading.Event())) == (b"", b"")
