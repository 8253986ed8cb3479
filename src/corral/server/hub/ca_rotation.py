"""Rotating the server's CA without touching an agent (issue 13 part 1): the agents learn the next CA over the
channel they already trust, confirm it, and only then does the server switch.

Why this order: an agent pins the CA (agent/trust.py) and refuses any certificate it did not issue. Were the server
to serve a certificate of the next CA before an agent trusts it, that agent's next reconnect would be refused for
good. So `start` makes the next CA (server/security/tls.py `begin_ca_rotation`; `ca.pem` becomes the bundle "current,
next", which the CLI trusts through admin.env) and sends every connected agent a `trust` message with the bundle;
each agent pins the bundle and answers `trusted` with the digests it now trusts. Once every agent that is connected
has confirmed the next CA (agents that disconnect stop counting; one that connects meanwhile gets the bundle in turn),
or after `DEADLINE_SECONDS` whatever is left, `finish` makes the next CA the only one, serves a certificate it
issued, and sends the agents the new CA alone: the old one is dropped everywhere. Join tokens carry the current CA's
digest, so those issued after the switch carry the new one. A server restarted mid-rotation resumes it (the next CA
is on disk) with a fresh deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from corral.model import protocol
from corral.server.hub.hub import AgentHub
from corral.server.security.tls import ServerTls

log = logging.getLogger("corral.tls")

DEADLINE_SECONDS = 600.0


@dataclass
class CaRotation:
    tls: ServerTls
    hub: AgentHub
    deadline_seconds: float = DEADLINE_SECONDS
    confirmed: set[str] = field(default_factory=set)  # hosts whose agent pinned the next CA
    deadline: float = 0.0
    _timer: asyncio.TimerHandle | None = None
    _late: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def attach(self) -> None:
        """Listen to the hub: agents that connect get the bundle; their `trusted` answers count."""
        self.hub.connect_listeners.append(self.on_connect)
        self.hub.trust_listener = self.on_trusted
        if self.tls.rotating:
            log.info("a CA rotation was running when the server stopped: resuming it")
            self._arm()

    def waiting_for(self) -> list[str]:
        return sorted(set(self.hub.sessions) - self.confirmed)

    def status(self) -> dict[str, Any]:
        rotating = self.tls.rotating
        return {
            "state": "rotating" if rotating else "idle",
            "ca_digest": self.tls.ca_digest,
            "next_ca_digest": self.tls.next_ca_digest,
            "waiting_for": self.waiting_for() if rotating else [],
            "confirmed": sorted(self.confirmed) if rotating else [],
            "deadline_seconds": max(0.0, round(self.deadline - time.monotonic(), 1)) if rotating else None,
        }

    async def start(self) -> dict[str, Any]:
        async with self._lock:
            await run_in_threadpool(self.tls.begin_ca_rotation)
            self._arm()
            await self._send_all()
        await self._check()
        return self.status()

    def _arm(self) -> None:
        self.confirmed = set()
        self.deadline = time.monotonic() + self.deadline_seconds
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.deadline_seconds, self._on_deadline)

    def _on_deadline(self) -> None:
        self._late = asyncio.create_task(self._check(), name="ca-rotation-deadline")

    async def _send_all(self) -> None:
        for host_id in list(self.hub.sessions):
            await self._send(host_id)

    async def _send(self, host_id: str) -> None:
        session = self.hub.sessions.get(host_id)
        if session is None:
            return
        bundle = (await run_in_threadpool(lambda: self.tls.trust_bundle)).decode("ascii")
        with contextlib.suppress(Exception):  # a closing socket: that agent no longer counts
            await session.send(protocol.Message(protocol.TRUST, {"ca": bundle}))

    async def on_connect(self, host_id: str) -> None:
        if self.tls.rotating:
            self.confirmed.discard(host_id)
            await self._send(host_id)

    async def on_trusted(self, host_id: str, data: dict[str, Any]) -> None:
        digests = data.get("digests")
        if not self.tls.rotating or not isinstance(digests, list):
            return
        if self.tls.next_ca_digest in digests:
            self.confirmed.add(host_id)
            log.info("agent of host %s trusts the next CA", host_id)
        await self._check()

    async def _check(self) -> None:
        async with self._lock:
            if not self.tls.rotating:
                return
            waiting = self.waiting_for()
            late = time.monotonic() >= self.deadline
            if waiting and not late:
                return
            if waiting:
                log.warning("CA rotation deadline passed; agents that did not confirm: %s", ", ".join(waiting))
            info = await run_in_threadpool(self.tls.finish_ca_rotation)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.confirmed = set()
            await self._send_all()  # the new CA alone: the old one is dropped
            log.info("CA rotated: %s; server certificate serial %x", info.ca_digest, info.serial)
