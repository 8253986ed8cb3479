"""The DNS server of one host: containers on the managed network ask it for service names (agent/dns_records.py
decides what a name means for the asking container); every other name goes to the host's own resolvers.

Why in the agent: it runs in the host's network namespace, where 169.254.169.250 sits on `corral0`, so a
container reaches it through its gateway and the query arrives from the container's own address (Docker's
embedded resolver at 127.0.0.11 forwards from inside the container's namespace: verified), which is how answers
differ per container. And it reads the host's /etc/resolv.conf from there, so an upstream at 127.0.0.53 (a local
caching resolver) still works — Rancher's DNS, in a container, broke on exactly that.

Wire details: UDP and TCP; containers ask port 53, which the host's NAT table sends to the agent's
`DNS_LISTEN_PORT` (network/services_nat.py) so that port 53 stays free for containers to publish; dnslib for the
format. Our own answers are authoritative with a TTL of
`ANSWER_TTL` seconds (one second: the addresses follow health and running state, which change any moment, and
the server is on the same host, so asking again costs nothing; a longer TTL would let a caching client keep an
unhealthy container). A forwarded query is sent upstream byte for byte (same id) and the upstream's answer
returned as it is; no upstream at all, or none answering within the timeout, is SERVFAIL. A packet that is not a
DNS query is answered FORMERR when it has a header to answer, and dropped otherwise: nothing a client sends can
stop the server. The sockets are bound with IP_FREEBIND, so the server may start before the address is on the
bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from dnslib import CNAME, EDNS0, QTYPE, RCODE, RR, SOA, A, DNSError, DNSHeader, DNSRecord

from corral.agent.dns_records import FORWARD, Lookup, NameTable, Outcome, shuffled
from corral.agent.listening import serve_when_ready
from corral.model.network import DNS_DOMAIN, SERVICES_ADDRESS, NetworkState
from corral.model.network_scope import Demand

log = logging.getLogger("corral.agent.dns")

DNS_PORT = 53
ANSWER_TTL = 1
UPSTREAM_TIMEOUT_SECONDS = 2.0
MAX_UPSTREAMS = 3  # as many as the libc resolver uses
RESOLV_CONF = Path("/etc/resolv.conf")
RESOLV_RECHECK_SECONDS = 2.0
RETRY_BIND_SECONDS = 5.0
MAX_FORWARDS = 256  # queries waiting for an upstream at once; beyond that: SERVFAIL at once (a dead upstream
# must not pile up sockets and tasks while clients retry)
TCP_IDLE_SECONDS = 10.0
PLAIN_UDP_LIMIT = 512
EDNS_UDP_LIMIT = 1232  # the DNS flag day 2020 size: no fragmentation on any sane path
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
_FLAG_QR = 0x8000
_CLASS_IN_OR_ANY = (1, 255)
_TYPE_A_OR_ANY = (1, 255)
_SOA = SOA(f"ns.{DNS_DOMAIN}", f"hostmaster.{DNS_DOMAIN}", (1, 3600, 600, 86400, ANSWER_TTL))


def read_resolvers(path: Path, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The `nameserver` addresses of a resolv.conf (at most MAX_UPSTREAMS), without our own addresses."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    found: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver" and words[1] not in exclude and words[1] not in found:
            found.append(words[1])
    return found[:MAX_UPSTREAMS]


def _question_name(data: bytes) -> str:
    """The name a query asks about ("" when it is not one question we could read)."""
    try:
        request = DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, KeyError, UnicodeError, struct.error):
        return ""
    return str(request.q.qname) if len(request.questions) == 1 else ""


def _formerr(data: bytes) -> bytes | None:
    """FORMERR for a packet with a query header we could not parse; None (drop) for anything else."""
    if len(data) < 12:
        return None
    ident, flags = struct.unpack("!HH", data[:4])
    if flags & _FLAG_QR:
        return None
    opcode_bits = flags & 0x7800
    return struct.pack("!HHHHHH", ident, _FLAG_QR | opcode_bits | RCODE.FORMERR, 0, 0, 0, 0)


def _udp_limit(request: DNSRecord) -> int:
    for record in request.ar:
        if record.rtype == QTYPE.OPT:
            return max(PLAIN_UDP_LIMIT, min(int(record.rclass), EDNS_UDP_LIMIT))
    return PLAIN_UDP_LIMIT


class DnsServer:
    """One host's resolver. `update(state)` swaps the name table; `run(stop)` serves once a state arrived."""

    def __init__(
        self,
        *,
        address: str = SERVICES_ADDRESS,
        port: int = DNS_PORT,
        resolv_conf: Path = RESOLV_CONF,
        upstream_port: int = DNS_PORT,
        upstream_timeout: float = UPSTREAM_TIMEOUT_SECONDS,
        demand: Demand | None = None,
    ) -> None:
        self.address = address
        # asks the server for services a scoped state lacks and waits for them (agent/network.py `demand`)
        self.demand = demand
        self.port = port
        self.resolv_conf = resolv_conf
        self.upstream_port = upstream_port
        self.upstream_timeout = upstream_timeout
        self.table: NameTable | None = None
        self._state_arrived = asyncio.Event()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._resolvers: list[str] = []
        self._resolvers_read_at = -RESOLV_RECHECK_SECONDS
        self._resolvers_key: tuple[float, int] | None = None

    # -- the component API (agent/network.py)

    def update(self, state: NetworkState) -> None:
        """Answer from this state from now on (level-triggered: the whole environment each time)."""
        self.table = NameTable(state)
        self._state_arrived.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve from the first `network` message until `stop`; a failed bind (port taken) is retried, logged."""
        await serve_when_ready(
            f"DNS on {self.address}:{self.port} (udp, tcp)",
            ready=self._state_arrived,
            stop=stop,
            start=self.start,
            close=self.close,
            log=log,
            retry_seconds=RETRY_BIND_SECONDS,
        )

    async def start(self) -> None:
        """Bind UDP and TCP on address:port (port 0: any free port, see `bound_port`). Raises OSError."""
        loop = asyncio.get_running_loop()
        udp_socket = self._socket(socket.SOCK_DGRAM)
        try:
            tcp_socket = self._socket(socket.SOCK_STREAM, port=udp_socket.getsockname()[1])
        except OSError:
            udp_socket.close()
            raise
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_socket)
        self._udp = transport
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_socket)
        except OSError:
            transport.close()
            self._udp = None
            raise

    @property
    def bound_port(self) -> int:
        if self._udp is None:
            return 0
        port: int = self._udp.get_extra_info("sockname")[1]
        return port

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), timeout=1.0)
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def _socket(self, kind: int, port: int | None = None) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.bind((self.address, self.port if port is None else port))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    # -- answering

    def answer_locally(self, data: bytes, client_ip: str, *, udp: bool = True) -> bytes | Lookup | None:
        """The reply for a query we own (or a FORMERR / NOTIMP), None to drop it, FORWARD to ask upstream."""
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, KeyError, UnicodeError, struct.error):
            return _formerr(data)
        if request.header.qr:
            return None
        if request.header.opcode != 0:
            return self._error(request, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return self._error(request, RCODE.FORMERR)
        question = request.q
        table = self.table
        lookup = table.resolve(str(question.qname), client_ip) if table is not None else FORWARD
        if not lookup.owned:
            return FORWARD
        if lookup.cname:  # an external service by hostname: the CNAME, then the target's addresses
            assert table is not None
            target = table.resolve(lookup.cname, client_ip)
            if not target.owned:
                return lookup  # `answer` asks the upstream resolvers for the target
            return self.cname_reply(request, lookup.cname, target.addresses, udp=udp)
        reply = request.reply()
        if lookup.outcome is Outcome.NXDOMAIN:
            reply.header.rcode = RCODE.NXDOMAIN
        elif question.qclass in _CLASS_IN_OR_ANY and question.qtype in _TYPE_A_OR_ANY:
            for ip in shuffled(lookup.addresses):
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=ANSWER_TTL))
        if not reply.rr:
            reply.add_auth(RR(DNS_DOMAIN, QTYPE.SOA, rdata=_SOA, ttl=ANSWER_TTL))
        limit = PLAIN_UDP_LIMIT
        if any(record.rtype == QTYPE.OPT for record in request.ar):
            reply.add_ar(EDNS0(udp_len=EDNS_UDP_LIMIT))
            limit = _udp_limit(request)
        packed: bytes = reply.pack()
        if udp and len(packed) > limit:
            reply.header.tc = 1
            while reply.rr and len(packed) > limit:
                reply.rr.pop()
                packed = reply.pack()
        return packed

    def cname_reply(self, request: DNSRecord, target: str, addresses: Sequence[str], *, udp: bool) -> bytes:
        """The CNAME to `target` and, for A or ANY questions, the target's addresses (as a recursive resolver gives
        them: stub resolvers do not chase a CNAME themselves)."""
        question = request.q
        reply = request.reply()
        reply.add_answer(RR(question.qname, QTYPE.CNAME, rdata=CNAME(target), ttl=ANSWER_TTL))
        if question.qclass in _CLASS_IN_OR_ANY and question.qtype in _TYPE_A_OR_ANY:
            for ip in shuffled(addresses):
                reply.add_answer(RR(target, QTYPE.A, rdata=A(ip), ttl=ANSWER_TTL))
        packed: bytes = reply.pack()
        if udp and len(packed) > PLAIN_UDP_LIMIT:
            reply.header.tc = 1
            while len(reply.rr) > 1 and len(packed) > PLAIN_UDP_LIMIT:
                reply.rr.pop()
                packed = reply.pack()
        return packed

    async def _chase(self, data: bytes, target: str, *, udp: bool) -> bytes | None:
        """A CNAME reply whose target's addresses come from the upstream resolvers (none when they fail)."""
        upstream = await self._forward(DNSRecord.question(target, "A").pack(), udp=udp)
        addresses: list[str] = []
        if upstream is not None:
            with contextlib.suppress(DNSError, ValueError, IndexError, KeyError, UnicodeError, struct.error):
                addresses = [str(rr.rdata) for rr in DNSRecord.parse(upstream).rr if rr.rtype == QTYPE.A]
        return self.cname_reply(DNSRecord.parse(data), target, addresses, udp=udp)

    def _error(self, request: DNSRecord, rcode: int) -> bytes:
        reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, rcode=rcode))
        if len(request.questions) == 1:
            reply.add_question(request.q)
        packed: bytes = reply.pack()
        return packed

    def wanted(self, data: bytes, client_ip: str) -> set[tuple[str, str]]:
        """The services a scoped state must get from the server before this query is answered (agent/dns_records.py
        `NameTable.wanted`); empty without a scoped state or a way to ask."""
        table = self.table
        if self.demand is None or table is None or not table.scoped:
            return set()
        name = _question_name(data)
        return table.wanted(name, client_ip) if name else set()

    async def answer(self, data: bytes, client_ip: str, *, udp: bool = True) -> bytes | None:
        """The full reply for one query: ours, or the upstream's, or SERVFAIL."""
        wanted = self.wanted(data, client_ip)
        if wanted and self.demand is not None:
            await self.demand(wanted)
        local = self.answer_locally(data, client_ip, udp=udp)
        if not isinstance(local, Lookup):
            return local
        if local.cname:
            return await self._chase(data, local.cname, udp=udp)
        upstream = await self._forward(data, udp=udp)
        if upstream is not None:
            return upstream
        return self._error(DNSRecord.parse(data), RCODE.SERVFAIL)

    # -- forwarding

    def resolvers(self) -> list[str]:
        """The host's upstream resolvers, re-read when /etc/resolv.conf changes (checked every few seconds)."""
        now = time.monotonic()
        if now - self._resolvers_read_at >= RESOLV_RECHECK_SECONDS:
            self._resolvers_read_at = now
            try:
                info = os.stat(self.resolv_conf)
                key: tuple[float, int] | None = (info.st_mtime, info.st_ino)
            except OSError:
                key = None
            if key != self._resolvers_key or key is None:
                self._resolvers_key = key
                self._resolvers = read_resolvers(self.resolv_conf, exclude=frozenset({self.address, SERVICES_ADDRESS}))
        return self._resolvers

    async def _forward(self, data: bytes, *, udp: bool) -> bytes | None:
        for server in self.resolvers():
            exchange = self._exchange_udp(server, data) if udp else self._exchange_tcp(server, data)
            try:
                reply = await asyncio.wait_for(exchange, timeout=self.upstream_timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                log.debug("upstream %s failed: %r", server, exc)
                continue
            if reply is not None:
                return reply
        return None

    async def _exchange_udp(self, server: str, data: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        received: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UpstreamProtocol(received, data[:2]), remote_addr=(server, self.upstream_port)
        )
        try:
            transport.sendto(data)
            return await received
        finally:
            transport.close()

    async def _exchange_tcp(self, server: str, data: bytes) -> bytes | None:
        reader, writer = await asyncio.open_connection(server, self.upstream_port)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = await reader.readexactly(length)
            return reply if reply[:2] == data[:2] else None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- transports

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply_udp(self, data: bytes, addr: tuple[str, int], transport: asyncio.DatagramTransport) -> None:
        try:
            reply = await self.answer(data, addr[0], udp=True)
        except Exception:  # one bad query must never stop the server
            log.exception("DNS query from %s failed", addr[0])
            reply = _servfail_or_none(data)
        if reply is not None and not transport.is_closing():
            transport.sendto(reply, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else ""
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), timeout=TCP_IDLE_SECONDS)
                (length,) = struct.unpack("!H", header)
                data = await asyncio.wait_for(reader.readexactly(length), timeout=TCP_IDLE_SECONDS)
                try:
                    reply = await self.answer(data, client_ip, udp=False)
                except Exception:
                    log.exception("DNS query from %s failed", client_ip)
                    reply = _servfail_or_none(data)
                if reply is None:
                    continue
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _servfail_or_none(data: bytes) -> bytes | None:
    reply = _formerr(data)
    if reply is None:
        return None
    return reply[:3] + bytes([(reply[3] & 0xF0) | RCODE.SERVFAIL]) + reply[4:]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # the selector's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        try:
            # what a scoped state lacks is asked for, as a forward is: on a task
            local = (
                FORWARD if self.server.wanted(data, addr[0]) else self.server.answer_locally(data, addr[0], udp=True)
            )
        except Exception:
            log.exception("DNS query from %s failed", addr[0])
            local = _servfail_or_none(data)
        if isinstance(local, Lookup) and len(self.server._tasks) >= MAX_FORWARDS:
            transport.sendto(self.server._error(DNSRecord.parse(data), RCODE.SERVFAIL), addr)
        elif isinstance(local, Lookup):  # upstream: do not hold up the queries behind it
            self.server._spawn(self.server._reply_udp(data, addr, transport))
        elif local is not None:
            transport.sendto(local, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS socket error: %r", exc)


class _UpstreamProtocol(asyncio.DatagramProtocol):
    """One forwarded query: the first datagram with the query's id completes `received` (others are ignored)."""

    def __init__(self, received: asyncio.Future[bytes], ident: bytes) -> None:
        self.received = received
        self.ident = ident

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.ident and not self.received.done():
            self.received.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.received.done():
            self.received.set_exception(exc)
