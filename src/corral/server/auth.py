"""API authentication: every call carries a key pair, as HTTP Basic (access:secret) or `Bearer access:secret`.

Why: the system we model let unauthenticated callers in by default; Corral has no anonymous mode. Admin keys may
call the admin API; an agent's per-host key may only hold its own host's agent connection.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from corral.model.entities import KeyKind, Principal
from corral.model.errors import Forbidden, Unauthorized
from corral.store.repository import Store


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


def authenticate_header(store: Store, header: str | None) -> Principal:
    access_key, secret = parse_authorization(header)
    return store.authenticate(access_key, secret)


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency for the admin API."""
    store: Store = request.app.state.store
    principal = await run_in_threadpool(authenticate_header, store, request.headers.get("authorization"))
    if principal.kind is not KeyKind.ADMIN:
        raise Forbidden("host credentials cannot call the admin API")
    return principal
