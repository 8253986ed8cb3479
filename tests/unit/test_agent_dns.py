"""The DNS server on real loopback sockets: per-client answers by source address, forwarding to a fake upstream
(a tiny UDP/TCP server of this test, listed in a resolv.conf at 127.x) with the id preserved, SERVFAIL without or
with a silent upstream, TCP, truncation, and garbage that never stops it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.agent import dns
from corral.agent.dns import DnsServer, read_resolvers
from corral.agent.dns_records import Lookup
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState

SERVER_IP = "127.53.0.1"
UPSTREAM_IP = "127.53.0.2"
WEB_IPS = {"127.53.1.11", "127.53.1.12"}
CLIENT_IP = "127.53.1.31"
STRANGER_IP = "127.53.9.9"
GUARD = 10.0  # a liveness guard for every exchange, not a timing assertion


def _container(stack: str, service: str, index: int, ip: str, **extra: object) -> ContainerRecord:
    return ContainerRecord(
        slot_id=f"s{index}{service}",
        name=f"{stack}-{service}-{index}",
        stack=stack,
        service=service,
        index=index,
        host_id="h1",
        ip=ip,
        running=True,
        healthy=bool(extra.pop("healthy", True)),
        **extra,  # type: ignore[arg-type]
    )


def _state(extra: tuple[ContainerRecord, ...] = ()) -> NetworkState:
    web = tuple(_container("shop", "web", i, ip) for i, ip in enumerate(sorted(WEB_IPS), start=1))
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.0.0/24"),
        containers=(*web, _container("shop", "app", 1, CLIENT_IP, links=("web:www",)), *extra),
    )


class _FakeUpstream(asyncio.DatagramProtocol):
    """Answers `example.com` with 192.0.2.55 (or stays silent); remembers what it was asked."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.asked: list[DNSRecord] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # the selector's is not a subclass

    def reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        self.asked.append(request)
        reply = request.reply()
        if str(request.q.qname).rstrip(".") == "example.com":
            reply.add_answer(RR("example.com", QTYPE.A, rdata=A("192.0.2.55"), ttl=300))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        packed: bytes = reply.pack()
        return packed

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.silent and self.transport is not None:
            self.transport.sendto(self.reply(data), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = self.reply(await reader.readexactly(length))
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def _running(
    tmp_path: Path, *, nameserver: str | None = UPSTREAM_IP, silent: bool = False, timeout: float = GUARD
) -> AsyncIterator[tuple[DnsServer, _FakeUpstream]]:
    loop = asyncio.get_running_loop()
    upstream = _FakeUpstream(silent)
    transport, _ = await loop.create_datagram_endpoint(lambda: upstream, local_addr=(UPSTREAM_IP, 0))
    port = transport.get_extra_info("sockname")[1]
    tcp = await asyncio.start_server(upstream.serve_tcp, UPSTREAM_IP, port)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# test\nsearch example\n" + (f"nameserver {nameserver}\n" if nameserver else ""))
    server = DnsServer(address=SERVER_IP, port=0, resolv_conf=resolv, upstream_port=port, upstream_timeout=timeout)
    server.update(_state())
    await server.start()
    try:
        yield server, upstream
    finally:
        await server.close()
        transport.close()
        tcp.close()


async def _ask_udp(server: DnsServer, packet: bytes, source: str = CLIENT_IP) -> bytes:
    loop = asyncio.get_running_loop()
    received: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not received.done():
                received.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(
        Client, local_addr=(source, 0), remote_addr=(SERVER_IP, server.bound_port)
    )
    try:
        transport.sendto(packet)
        return await asyncio.wait_for(received, timeout=GUARD)
    finally:
        transport.close()


async def _ask_tcp(server: DnsServer, packet: bytes, source: str = CLIENT_IP) -> bytes:
    reader, writer = await asyncio.open_connection(SERVER_IP, server.bound_port, local_addr=(source, 0))
    try:
        writer.write(struct.pack("!H", len(packet)) + packet)
        (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout=GUARD))
        return await reader.readexactly(length)
    finally:
        writer.close()


def _addresses(reply: bytes) -> set[str]:
    return {str(rr.rdata) for rr in DNSRecord.parse(reply).rr if rr.rtype == QTYPE.A}


def _run(scenario: Callable[[], object]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_answers_depend_on_the_source_address(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _running(tmp_path) as (server, upstream):
            query = DNSRecord.question("web")
            reply = DNSRecord.parse(await _ask_udp(server, query.pack()))
            assert reply.header.id == query.header.id and reply.header.aa == 1
            assert {str(rr.rdata) for rr in reply.rr} == WEB_IPS and {rr.ttl for rr in reply.rr} == {1}
            assert _addresses(await _ask_udp(server, DNSRecord.question("www").pack())) == WEB_IPS  # its link alias
            # a stranger: no short names (forwarded, upstream says NXDOMAIN), but the qualified ones
            stranger = DNSRecord.parse(await _ask_udp(server, query.pack(), source=STRANGER_IP))
            assert stranger.header.rcode == RCODE.NXDOMAIN
            assert [str(q.q.qname) for q in upstream.asked] == ["web."]
            fqdn = DNSRecord.question("WEB.shop.corral.internal.").pack()
            assert _addresses(await _ask_udp(server, fqdn, source=STRANGER_IP)) == WEB_IPS
            assert _addresses(await _ask_tcp(server, fqdn, source=STRANGER_IP)) == WEB_IPS

    _run(scenario)


def test_owned_names_without_live_containers_are_nxdomain_and_not_forwarded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _running(tmp_path) as (server, upstream):
            server.update(_state((_container("shop", "db", 1, "127.53.1.41", healthy=False),)))
            for name in ("db", "db.shop", "nothing.shop.corral.internal"):
                reply = DNSRecord.parse(await _ask_udp(server, DNSRecord.question(name).pack()))
                assert reply.header.rcode == RCODE.NXDOMAIN and reply.header.aa == 1, name
                assert [rr.rtype for rr in reply.auth] == [QTYPE.SOA]
            aaaa = DNSRecord.parse(await _ask_udp(server, DNSRecord.question("web", "AAAA").pack()))
            assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr  # exists, but has no IPv6 address
            assert upstream.asked == []

    _run(scenario)


def test_other_names_are_forwarded_with_their_id_over_udp_and_tcp(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _running(tmp_path) as (server, upstream):
            query = DNSRecord.question("example.com")
            for ask in (_ask_udp, _ask_tcp):
                reply = DNSRecord.parse(await ask(server, query.pack()))
                assert reply.header.id == query.header.id
                assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.55"] and reply.rr[0].ttl == 300
            assert [str(q.q.qname) for q in upstream.asked] == ["example.com."] * 2
            assert {q.header.id for q in upstream.asked} == {query.header.id}

    _run(scenario)


def test_no_upstream_or_a_silent_one_is_servfail(tmp_path: Path) -> None:
    async def scenario() -> None:
        query = DNSRecord.question("example.com")
        async with _running(tmp_path, nameserver=None) as (server, _):
            reply = DNSRecord.parse(await _ask_udp(server, query.pack()))
            assert (reply.header.id, reply.header.rcode) == (query.header.id, RCODE.SERVFAIL)
        async with _running(tmp_path, silent=True, timeout=0.2) as (server, _):
            reply = DNSRecord.parse(await _ask_udp(server, query.pack()))
            assert (reply.header.id, reply.header.rcode) == (query.header.id, RCODE.SERVFAIL)
            # ours still answered while the upstream is silent
            assert _addresses(await _ask_udp(server, DNSRecord.question("web").pack())) == WEB_IPS

    _run(scenario)


def test_too_many_waiting_forwards_are_servfail_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns, "MAX_FORWARDS", 1)

    async def scenario() -> None:
        async with _running(tmp_path, silent=True, timeout=3 * GUARD) as (server, _):
            waiting = asyncio.ensure_future(_ask_udp(server, DNSRecord.question("example.com").pack()))
            while not server._tasks:
                await asyncio.sleep(0.01)
            second = DNSRecord.question("example.org")
            reply = DNSRecord.parse(await _ask_udp(server, second.pack()))
            assert (reply.header.id, reply.header.rcode) == (second.header.id, RCODE.SERVFAIL)
            assert not waiting.done()  # the first is still waiting for the silent upstream
            waiting.cancel()

    _run(scenario)


def test_a_large_answer_is_truncated_over_udp_and_whole_over_tcp(tmp_path: Path) -> None:
    many = tuple(_container("shop", "big", i, f"127.53.2.{i}") for i in range(1, 101))

    async def scenario() -> None:
        async with _running(tmp_path) as (server, _):
            server.update(_state(many))
            query = DNSRecord.question("big").pack()
            over_udp = await _ask_udp(server, query)
            assert len(over_udp) <= 512 and DNSRecord.parse(over_udp).header.tc == 1
            over_tcp = DNSRecord.parse(await _ask_tcp(server, query))
            assert over_tcp.header.tc == 0 and len(over_tcp.rr) == 100

    _run(scenario)


def test_garbage_never_stops_the_server(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _running(tmp_path) as (server, _):
            header_only = struct.pack("!HHHHHH", 4242, 0x0100, 1, 0, 0, 0)  # says 1 question, has none
            reply = await _ask_udp(server, header_only)
            assert struct.unpack("!H", reply[:2])[0] == 4242 and reply[3] & 0x0F == RCODE.FORMERR
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for junk in (b"", b"\x00", b"\xff" * 11, b"\x80" * 40):  # too short or a response: dropped
                    raw.sendto(junk, (SERVER_IP, server.bound_port))
            _, writer = await asyncio.open_connection(SERVER_IP, server.bound_port)
            writer.write(b"\x00\x05abc")  # a TCP query cut short
            writer.close()
            assert _addresses(await _ask_udp(server, DNSRecord.question("web").pack())) == WEB_IPS
            assert _addresses(await _ask_tcp(server, DNSRecord.question("web").pack())) == WEB_IPS

    _run(scenario)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_get_a_reply_or_nothing_never_an_exception(data: bytes) -> None:
    server = DnsServer(address=SERVER_IP, port=0)
    server.update(_state())
    result = server.answer_locally(data, CLIENT_IP)
    assert result is None or isinstance(result, (bytes, Lookup))
    if isinstance(result, bytes):
        assert result[:2] == data[:2]  # the id is kept


def test_read_resolvers(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text(
        "nameserver 127.0.0.53 # local cache\n; comment\nnameserver 169.254.169.250\nnameserver ::1\n"
        "nameserver 127.0.0.53\nsearch x\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n"
    )
    assert read_resolvers(path, exclude=frozenset({"169.254.169.250"})) == ["127.0.0.53", "::1", "10.0.0.1"]
    assert read_resolvers(tmp_path / "missing") == []
