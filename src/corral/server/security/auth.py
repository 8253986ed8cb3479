"""API authentication: every call carries a key pair, as HTTP Basic (access:secret) or `Bearer access:secret`.

Why: the system we model let unauthenticated callers in by default; Corral has no anonymous mode. This module
finds who calls (store/keys.py: admin, user, environment, service or agent keys); what they may do is decided by
the policy table (server/security/authorization.py, server/security/access_rules.py); an agent's per-host key may only
hold its own host's agent connection. Every failed
authentication is logged (address and access key, never the secret) and counted per client address: an address
with too many failures in a minute gets 429 with Retry-After for a while, without its credentials being checked,
so guessing secrets is slow. HTTP requests are authenticated by `server/security/guard.py` before their body is read;
the principal it found is handed to `require_admin` through the ASGI scope, so nothing is checked twice.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from corral.model.entities import KeyKind, Principal
from corral.model.errors import Forbidden, TooManyRequests, Unauthorized
from corral.store.repository import Store

log = logging.getLogger("corral.server.auth")

PRINCIPAL_SCOPE_KEY = "corral.principal"  # set by server/security/guard.py once the request's credentials were checked
ACCESS_SCOPE_KEY = "corral.access"  # set by server/security/authorization.py once the call was allowed
TOUCHED_ENVIRONMENT_KEY = "corral.environment"  # the environment a call named, allowed or not
MAX_TRACKED_ADDRESSES = 10_000
WINDOW_SECONDS = 60.0


def parse_authorization(header: str | None) -> tuple[str, str]:
    """Split an Authorization header into (access_key, secret); Unauthorized if absent or malformed."""
    if not header:
        raise Unauthorized("an API key is required (HTTP Basic access:secret or Bearer access:secret)")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("malformed Basic credentials") from exc
    elif scheme.lower() != "bearer":
        raise Unauthorized(f"unsupported authorization scheme {scheme!r}")
    access_key, sep, secret = value.partition(":")
    if not sep or not access_key or not secret:
        raise Unauthorized("credentials must be ACCESS_KEY:SECRET_KEY")
    return access_key, secret


def key_id_of(header: str | None) -> str:
    """The access key of a header, for logs (never the secret); "-" when there is none."""
    try:
        access_key, _secret = parse_authorization(header)
    except Unauthorized:
        return "-"
    return "".join(ch if ch.isalnum() or ch in "-_." else "?" for ch in access_key[:64])


def authenticate_header(store: Store, header: str | None) -> Principal:
    access_key, secret = parse_authorization(header)
    return store.authenticate(access_key, secret)


@dataclass
class _Failures:
    times: collections.deque[float] = field(default_factory=collections.deque)
    blocked_until: float = 0.0


class AuthThrottle:
    """Failed authentications per client address, in bounded memory (the least recently failing addresses are
    forgotten first when more than `max_addresses` are tracked)."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        block_seconds: float = 60.0,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.block_seconds = block_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: collections.OrderedDict[str, _Failures] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._addresses)

    def retry_after(self, address: str) -> float:
        """Seconds this address must still wait (0: it may try)."""
        with self._lock:
            entry = self._addresses.get(address)
            return max(0.0, entry.blocked_until - self._clock()) if entry is not None else 0.0

    def failed(self, address: str) -> bool:
        """Count a failure; True when it blocks the address (from now on for `block_seconds`)."""
        if self.max_failures <= 0:
            return False
        now = self._clock()
        with self._lock:
            entry = self._addresses.pop(address, None) or _Failures()
            self._addresses[address] = entry  # most recent last
            while len(self._addresses) > self.max_addresses:
                self._addresses.popitem(last=False)
            while entry.times and entry.times[0] <= now - WINDOW_SECONDS:
                entry.times.popleft()
            entry.times.append(now)
            if len(entry.times) >= self.max_failures:
                entry.times.clear()
                entry.blocked_until = now + self.block_seconds
                return True
            return False


def client_address(app_state: Any, peer: str, forwarded_for: str | None, forward_token: str | None) -> str:
    """The address failures are counted against: the peer, or the browser's address the server's own UI names
    for a login (believed only with the server's in-process `forward_token`)."""
    expected = str(getattr(app_state, "forward_token", "") or "")
    if forwarded_for and forward_token and expected and hmac.compare_digest(forward_token, expected):
        return forwarded_for.strip()[:64]
    return peer


def throttle_of(app_state: Any) -> AuthThrottle:
    throttle = getattr(app_state, "auth_throttle", None)
    if throttle is None:  # an app built without server/app.py (a test): throttle with the defaults
        throttle = app_state.auth_throttle = AuthThrottle()
    assert isinstance(throttle, AuthThrottle)
    return throttle


async def authenticate_request(app_state: Any, header: str | None, address: str) -> Principal:
    """Check credentials for a caller at `address`; TooManyRequests while that address is blocked (nothing is
    checked then), Unauthorized (logged and counted) for wrong ones."""
    throttle = throttle_of(app_state)
    wait = throttle.retry_after(address)
    if wait > 0:
        raise TooManyRequests(
            f"too many failed authentications from {address}; try again in {wait:.0f} s", retry_after=wait
        )
    try:
        return await run_in_threadpool(authenticate_header, app_state.store, header)
    except Unauthorized as exc:
        blocked = throttle.failed(address)
        log.warning(
            "authentication failed from %s (key %s): %s%s",
            address or "-",
            key_id_of(header),
            exc.message,
            f"; blocked for {throttle.block_seconds:.0f} s" if blocked else "",
        )
        raise


async def require_admin(request: Request) -> Principal:
    """The caller of a /v1 route (the `Admin` dependency of the routes; the name predates roles). The decision
    is made before, once, by server/security/authorization.py's policy table; an app without that check (never served)
    falls back to admins only."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        address = request.client.host if request.client else ""
        principal = await authenticate_request(request.app.state, request.headers.get("authorization"), address)
    if principal.kind is KeyKind.AGENT or not (principal.admin or request.scope.get(ACCESS_SCOPE_KEY)):
        raise Forbidden("host credentials cannot call the admin API")
    return principal
