"""The overlay connectivity check: does this host reach each peer *through the overlay*?

Why: a VXLAN overlay fails silently (a lost fdb entry, a peer's device gone, UDP 4789 filtered): containers simply
stop reaching each other. Every agent answers small UDP echoes on PROBE_PORT (bound to all addresses; only packets
that crossed the overlay reach a peer's gateway address) and probes every peer's gateway every few seconds. The
result per peer ({ok, since, error}) goes to the server as a `connectivity` message when a status changes and after
every connect; the server shows broken pairs (either side reporting counts). A failed probe makes the agent re-apply
the overlay at once (agent/network.py), so a repairable fault is repaired before the next probe.

Split: `record_probe` / `forget_peers` are the pure bookkeeping (property-tested); `EchoResponder` and `probe_peer`
are the asyncio sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from corral.model.network import CONNECTIVITY_PROBE_PORT

log = logging.getLogger("corral.agent.connectivity")

PROBE_PORT = CONNECTIVITY_PROBE_PORT
PROBE_MAGIC = b"corral-probe "
REPLY_MAGIC = b"corral-reply "
PROBE_ATTEMPTS = 3
PROBE_ATTEMPT_SECONDS = 0.5
NEW_PEER_GRACE_SECONDS = 15.0  # a new peer's overlay may not be up yet: early failures are not reported


@dataclass(frozen=True)
class PeerStatus:
    ok: bool
    since: float  # when the current status began (epoch seconds)
    error: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"ok": self.ok, "since": self.since, "error": self.error}


@dataclass(frozen=True)
class PeerRecord:
    first_seen: float
    status: PeerStatus | None = None  # None until the first result that counts


def record_probe(
    peers: Mapping[str, PeerRecord],
    peer: str,
    ok: bool,
    error: str,
    now: float,
    *,
    grace: float = NEW_PEER_GRACE_SECONDS,
) -> tuple[dict[str, PeerRecord], bool]:
    """The records after one probe of `peer` (pure), and whether its reported status changed.

    A status changes when ok flips or the peer had none yet; `since` stays while the status holds (a new error
    text on a still-broken pair is kept but does not count as a change). A failure of a peer that never
    succeeded and was first seen less than `grace` ago is not recorded: its overlay may still be coming up.
    """
    result = dict(peers)
    record = result.get(peer) or PeerRecord(first_seen=now)
    current = record.status
    if not ok and current is None and now - record.first_seen < grace:
        result[peer] = record
        return result, False
    if current is not None and current.ok == ok:
        result[peer] = dataclasses.replace(record, status=dataclasses.replace(current, error="" if ok else error))
        return result, False
    result[peer] = dataclasses.replace(record, status=PeerStatus(ok, now, "" if ok else error))
    return result, True


def forget_peers(peers: Mapping[str, PeerRecord], current: Iterable[str], now: float) -> dict[str, PeerRecord]:
    """Keep the records of the current peers, start a record (first seen now) for new ones (pure)."""
    return {peer: peers.get(peer) or PeerRecord(first_seen=now) for peer in current}


def report(peers: Mapping[str, PeerRecord]) -> dict[str, dict[str, Any]]:
    """The `connectivity` message's `peers`: only peers with a status."""
    return {peer: r.status.to_wire() for peer, r in sorted(peers.items()) if r.status is not None}


# -- sockets ----------------------------------------------------------------------------------------------------


class _Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if data.startswith(PROBE_MAGIC) and len(data) <= 128 and self.transport is not None:
            self.transport.sendto(REPLY_MAGIC + data[len(PROBE_MAGIC) :], addr)


class EchoResponder:
    """Answers probes on (host, port) as long as it runs; started once per agent, rebinding after failures."""

    def __init__(self, host: str = "0.0.0.0", port: int = PROBE_PORT) -> None:  # probes arrive over the overlay
        self.host = host
        self.port = port
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def running(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def ensure(self) -> None:
        if self.running:
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                _Echo, local_addr=(self.host, self.port), family=socket.AF_INET
            )
        except OSError as exc:
            log.warning("cannot answer overlay probes on %s:%d: %s", self.host, self.port, exc)
            return
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _Prober(asyncio.DatagramProtocol):
    def __init__(self, token: bytes) -> None:
        self.token = token
        self.answered = asyncio.get_running_loop().create_future()
        self.error = ""

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if data == REPLY_MAGIC + self.token and not self.answered.done():
            self.answered.set_result(True)

    def error_received(self, exc: Exception) -> None:
        self.error = str(exc)


async def probe_peer(
    address: str,
    *,
    port: int = PROBE_PORT,
    attempts: int = PROBE_ATTEMPTS,
    attempt_seconds: float = PROBE_ATTEMPT_SECONDS,
) -> tuple[bool, str]:
    """Send up to `attempts` echoes to address:port; (True, "") on the first answer, else (False, why)."""
    loop = asyncio.get_running_loop()
    token = secrets.token_hex(8).encode()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Prober(token), remote_addr=(address, port), family=socket.AF_INET
        )
    except OSError as exc:
        return False, f"cannot probe {address}: {exc}"
    try:
        for _ in range(attempts):
            transport.sendto(PROBE_MAGIC + token)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.answered), timeout=attempt_seconds)
                return True, ""
        waited = attempts * attempt_seconds
        detail = f" ({protocol.error})" if protocol.error else ""
        return False, f"no answer from {address} over the overlay within {waited:g} s{detail}"
    finally:
        transport.close()


def wall_clock() -> float:
    return time.time()
