"""The metadata service of one host: HTTP on 169.254.169.250 (port 80 for containers) inside the host's
namespace, answering each managed container about itself, its service, stack and host, and about the environment
(agent/metadata_tree.py).

Why a tiny HTTP/1.1 server on `asyncio.start_server` rather than a web framework: the agent is meant to stay small,
the requests are GETs of short paths, and each connection gets one answer and is closed (busybox `wget`, `curl` and
rancher-metadata clients all cope). The caller is identified by its source address, which on the overlay is the
container's managed IP, so the service must listen where containers reach it directly: the link-local address the
overlay (agent/overlay) puts on `corral0`. Containers ask port 80; the agent listens on `METADATA_LISTEN_PORT`
and the host's NAT table sends one to the other (network/services_nat.py), so port 80 stays the user's. The
socket binds with IP_FREEBIND so it can listen before that address exists; tests pass a loopback address and port 0
instead.

Component contract (agent/network.py dispatches the `network` message): `update(state)` swaps the answer index;
`run(stop)` listens from the first state until `stop` (`start()` / `stop()` open and close the socket directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Final

from corral.agent.listening import serve_when_ready
from corral.agent.metadata_tree import Answer, MetadataIndex, not_found, wants_json
from corral.model import network_scope
from corral.model.network import SERVICES_ADDRESS, NetworkState
from corral.model.network_scope import Demand

log = logging.getLogger("corral.agent.metadata")

METADATA_PORT: Final = 80
MAX_REQUEST_BYTES: Final = 16 * 1024
READ_TIMEOUT_SECONDS: Final = 10.0
RETRY_BIND_SECONDS: Final = 5.0
_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class MetadataServer:
    """Answers metadata requests from the latest `NetworkState` (an empty environment until the first one)."""

    def __init__(
        self, address: str = SERVICES_ADDRESS, port: int = METADATA_PORT, demand: Demand | None = None
    ) -> None:
        self.address = address
        self.port = port
        # metadata lists the whole environment: a host whose state is scoped asks the server for all of it first
        self.demand = demand
        self._scoped = False
        self._index = MetadataIndex(None)
        self._server: asyncio.Server | None = None
        self._state_arrived = asyncio.Event()

    @property
    def bound_port(self) -> int:
        """The port it listens on (useful when started with port 0)."""
        if self._server is None or not self._server.sockets:
            return 0
        return int(self._server.sockets[0].getsockname()[1])

    def update(self, state: NetworkState) -> None:
        self._scoped = state.scoped
        self._index = MetadataIndex(state)
        self._state_arrived.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve from the first `network` message until `stop`; a failed bind (port taken) is retried, logged."""
        await serve_when_ready(
            f"metadata on {self.address}:{self.port}",
            ready=self._state_arrived,
            stop=stop,
            start=self.start,
            close=self.stop,
            log=log,
            retry_seconds=RETRY_BIND_SECONDS,
        )

    async def start(self) -> None:
        if self._server is not None:
            return
        listener = _listening_socket(self.address, self.port)
        self._server = await asyncio.start_server(self._handle, sock=listener)
        log.info("metadata service listening on %s:%d", self.address, self.bound_port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def answer(self, method: str, path: str, accept: str, caller_ip: str) -> Answer:
        as_json = wants_json(accept)
        if method not in ("GET", "HEAD"):
            return Answer(405, "Only GET and HEAD are allowed\n", "text/plain; charset=utf-8")
        path = path.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            return not_found(path, as_json=as_json)
        return self._index.answer(path, caller_ip, as_json=as_json)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        caller_ip = str(peer[0]) if peer else ""
        try:
            method, answer = await asyncio.wait_for(self._read_and_answer(reader, caller_ip), READ_TIMEOUT_SECONDS)
            if answer is not None:
                writer.write(_response(answer, head_only=method == "HEAD"))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that went away or never finished its request gets nothing
        except Exception:  # one bad request must never take the service down
            log.exception("metadata request from %s failed", caller_ip)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_and_answer(self, reader: asyncio.StreamReader, caller_ip: str) -> tuple[str, Answer | None]:
        head = await reader.readuntil(b"\r\n\r\n")  # over the reader's limit: LimitOverrunError
        if len(head) > MAX_REQUEST_BYTES:
            return "GET", Answer(400, "Request too large\n", "text/plain; charset=utf-8")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "GET", Answer(400, "Bad request line\n", "text/plain; charset=utf-8")
        method, target, _version = parts
        if self._scoped and self.demand is not None:
            await self.demand(network_scope.ALL)
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        return method, self.answer(method, target, accept, caller_ip)


def _response(answer: Answer, *, head_only: bool) -> bytes:
    body = answer.data
    head = (
        f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Error')}\r\n"
        f"Content-Type: {answer.content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


def _listening_socket(address: str, port: int) -> socket.socket:
    """A TCP listener that may bind an address the host does not have yet (IP_FREEBIND: the overlay adds it)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_IP, getattr(socket, "IP_FREEBIND", 15), 1)
        listener.bind((address, port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener
