"""Headless Chromium in a network namespace of its own, reaching the test servers through a relay.

Why: Chromium fails every request in flight with `net::ERR_NETWORK_CHANGED` whenever an interface or address of its
network namespace changes, and the integration tests running beside the browser tests (other pytest-xdist workers)
create and remove network namespaces, veths and bridges in the root namespace all the time. In a namespace of its
own, with nothing but `lo`, Chromium sees none of that.

How: a namespace per browser session (`corral-br-<pid>-<hex>`, `lo` up); Chromium is launched through a wrapper that
runs `ip netns exec <namespace> chromium "$@"` (Playwright drives Chromium over a pipe, which the namespace does not
cut). The test servers listen on 127.0.0.1:<port> in the root namespace; `expose(port)` opens a listening socket on
127.0.0.1:<same port> inside the browser's namespace (a short-lived thread enters the namespace with setns(2), which
affects that thread only, and the socket keeps the namespace it was made in) and relays each connection's bytes both
ways to the server, connecting from the root namespace. The URLs stay the same (https://127.0.0.1:<port>, with its
certificate, Host and Origin), and websockets (events, log streams, the shell) are bytes like any other.

Without root, or when the namespace cannot be made, the browser runs in the machine's namespace as before, and a
warning says why (those runs can see ERR_NETWORK_CHANGED when something else changes the interfaces).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
PREFIX = "corral-br-"
CLONE_NEWNET = 0x40000000  # os.CLONE_NEWNET from Python 3.12 on
CHUNK = 65536
CONNECT_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 5.0


def _setns(path: Path) -> None:
    """Move the calling thread (only it) into the network namespace at `path` (os.setns from Python 3.12 on)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def _listen_in_namespace(path: Path, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` inside the namespace at `path`, made by a thread that enters it and then
    ends (the calling thread, and every other, stays where it is)."""
    outcome: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            _setns(path)
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(128)
            outcome.append(listener)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=make, name=f"netns-listen-{port}", daemon=True)
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@dataclass(eq=False)  # hashed by identity: kept in a set while open
class _Connection:
    """One browser connection and its twin to the server; closed when both directions have ended."""

    inner: socket.socket
    outer: socket.socket
    ended: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        clean = False
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
            clean = True
        except OSError:
            pass
        if clean:  # an orderly end of this direction: pass it on, the other direction may still carry data
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
        else:  # a reset or a relay shutting down: end both directions
            self.abort()
        with self.lock:
            self.ended += 1
            last = self.ended == 2
        if last:
            self.inner.close()
            self.outer.close()

    def abort(self) -> None:
        for sock in (self.inner, self.outer):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _PortRelay:
    """127.0.0.1:`port` in the browser's namespace, relayed to 127.0.0.1:`port` in the root namespace."""

    def __init__(self, namespace: Path, port: int) -> None:
        self.port = port
        self._listener = _listen_in_namespace(namespace, port)
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._start(self._accept, f"relay-{port}")

    def _start(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                inner, _ = self._listener.accept()  # ends with OSError when close() shuts the listener down
            except OSError:
                return
            try:
                outer = socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                inner.close()  # nothing listens there (yet): the browser sees the connection closed
                continue
            outer.settimeout(None)
            connection = _Connection(inner, outer)
            with self._lock:
                if self._closed:
                    connection.abort()
                    inner.close()
                    outer.close()
                    return
                self._connections.add(connection)
            self._start(self._run, f"relay-{self.port}-in", connection, inner, outer)
            self._start(self._run, f"relay-{self.port}-out", connection, outer, inner)

    def _run(self, connection: _Connection, source: socket.socket, sink: socket.socket) -> None:
        connection.pump(source, sink)
        with self._lock:
            if connection.inner.fileno() == -1:  # both directions ended and closed it
                self._connections.discard(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        for connection in connections:
            connection.abort()  # wakes both pumps
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
        self._listener.close()


class BrowserNetwork:
    """Where the test browser runs: `executable` is what Playwright launches, `expose(port)` lets the browser reach
    127.0.0.1:`port` of the root namespace. `namespace` is None when the browser runs in the root namespace (then
    `reason` says why and `expose` has nothing to do)."""

    def __init__(
        self, chromium: str, namespace: str | None = None, wrapper: Path | None = None, reason: str = ""
    ) -> None:
        self.chromium = chromium
        self.namespace = namespace
        self.executable = str(wrapper) if wrapper is not None else chromium
        self.reason = reason
        self._relays: dict[int, _PortRelay] = {}
        self._lock = threading.Lock()

    def expose(self, port: int) -> None:
        """Relay 127.0.0.1:`port` in the browser's namespace to the same address in the root namespace (once per
        port: the relay holds no state about the server behind it, so a later server on that port is reached too)."""
        if self.namespace is None:
            return
        with self._lock:
            if port not in self._relays:
                self._relays[port] = _PortRelay(NETNS_DIR / self.namespace, port)

    def close(self) -> None:
        with self._lock:
            relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            relay.close()


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _remove_stale_namespaces() -> None:
    """Delete the namespaces of earlier runs whose process is gone (a killed run leaves its namespace behind)."""
    for path in NETNS_DIR.glob(f"{PREFIX}*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _ip("netns", "delete", path.name)


@contextlib.contextmanager
def browser_network(chromium: str) -> Iterator[BrowserNetwork]:
    """A network namespace for the test browser (see the module's docstring), removed on exit with its relays and
    wrapper; the root namespace, with a warning saying why, when no namespace can be made."""
    ip = shutil.which("ip")
    if os.geteuid() != 0 or ip is None:
        yield _fallback(chromium, "creating a network namespace needs root" if ip else "iproute2 is not installed")
        return
    _remove_stale_namespaces()
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(2)}"
    created = _ip("netns", "add", name)
    if created.returncode != 0:
        yield _fallback(chromium, f"`ip netns add {name}` failed: {created.stderr.strip()}")
        return
    directory = Path(tempfile.mkdtemp(prefix="corral-browser-"))
    network: BrowserNetwork | None = None
    try:
        up = _ip("-n", name, "link", "set", "lo", "up")
        if up.returncode != 0:
            raise RuntimeError(f"`ip -n {name} link set lo up` failed: {up.stderr.strip()}")
        wrapper = directory / "chromium"
        # exec all the way: Playwright's pipe (fds 3 and 4) and the process id it waits for reach Chromium unchanged
        command = shlex.join([ip, "netns", "exec", name, chromium])
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(stat.S_IRWXU)
        network = BrowserNetwork(chromium, namespace=name, wrapper=wrapper)
        yield network
    finally:
        if network is not None:
            network.close()
        _ip("netns", "delete", name)
        shutil.rmtree(directory, ignore_errors=True)


def _fallback(chromium: str, reason: str) -> BrowserNetwork:
    warnings.warn(
        f"the test browser runs in the machine's network namespace ({reason}): its requests can fail with "
        "net::ERR_NETWORK_CHANGED while other tests change the interfaces",
        stacklevel=4,  # the caller of browser_network(), past contextlib
    )
    return BrowserNetwork(chromium, reason=reason)
