"""Serve a host service (DNS, metadata) from the first `network` message until the agent stops.

Why one helper: both listen on the services address, which appears only once the overlay exists, and both must
survive a port that is taken (another resolver on :53) by retrying and saying why once, not crash the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

RETRY_BIND_SECONDS = 5.0


async def serve_when_ready(
    what: str,
    *,
    ready: asyncio.Event,
    stop: asyncio.Event,
    start: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    log: logging.Logger,
    retry_seconds: float = RETRY_BIND_SECONDS,
) -> None:
    """Wait for `ready` (or `stop`), then `start()` until it binds (an OSError is retried every `retry_seconds`
    and logged when its reason changes), serve until `stop`, and `close()` in any case. `what` names the service
    and its address in log lines ("DNS on 169.254.169.250:53")."""
    waiter = asyncio.ensure_future(stop.wait())
    arrived = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({waiter, arrived}, return_when=asyncio.FIRST_COMPLETED)
        logged = ""
        while not stop.is_set():
            try:
                await start()
                log.info("%s: listening", what)
                break
            except OSError as exc:
                reason = f"{what}: cannot listen: {exc.strerror or exc}"
                if reason != logged:
                    log.warning("%s; retrying every %.0fs", reason, retry_seconds)
                    logged = reason
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), timeout=retry_seconds)
        await waiter
    finally:
        waiter.cancel()
        arrived.cancel()
        await close()
