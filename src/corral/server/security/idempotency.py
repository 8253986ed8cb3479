"""Idempotency keys: a mutating /v1 call (POST, PUT, PATCH, DELETE) that carries `Idempotency-Key` is applied once;
the same call sent again with the same key (a client retrying across a server restart or a lost answer) gets the
first answer back, byte for byte, and the same key with another method, path or body gets 422.

Why an ASGI middleware inside the request guard: the guard has authenticated the caller (the key is scoped to its
access key, so one caller can never read another's answer) and bounded the body; one place covers every route,
present and future, without each handler knowing. Answers of 5xx, 401, 403 and 429 are not stored: they applied
nothing and a retry should be tried for real. Two calls with one key at once are serialised in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.model.entities import Principal
from corral.model.errors import CorralError
from corral.server.security.auth import PRINCIPAL_SCOPE_KEY
from corral.store.idempotency import IdempotencyStore, StoredAnswer

HEADER = b"idempotency-key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 128
MAX_STORED_BODY = 1 << 20  # a larger answer is sent but not kept (a retry is then applied again)
NOT_KEPT = frozenset({401, 403, 429})

log = logging.getLogger("corral.server.idempotency")


class Idempotency:
    def __init__(self, app: ASGIApp, *, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if key is None or scope["method"] not in MUTATING or not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _answer(send, 422, _invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"))
            return
        caller = hashlib.sha256(principal.access_key.encode()).hexdigest()
        body = await _read_body(receive)
        lock = self._locks.setdefault((key, caller), asyncio.Lock())
        try:
            async with lock:
                await self._once(scope, send, key, caller, body)
        finally:
            if not lock.locked():
                self._locks.pop((key, caller), None)

    async def _once(self, scope: Scope, send: Send, key: str, caller: str, body: bytes) -> None:
        method, path = str(scope["method"]), str(scope["path"])
        digest = hashlib.sha256(body).hexdigest()
        try:
            stored = await run_in_threadpool(self.store.find, key, caller)
        except CorralError as exc:  # the database is unavailable: the call itself would fail the same way
            await _answer(send, exc.status, exc.to_dict(), {"retry-after": str(getattr(exc, "retry_after_seconds", 2))})
            return
        if stored is not None:
            if (stored.method, stored.path, stored.body_digest) != (method, path, digest):
                message = "Idempotency-Key was already used for another call (method, path or body differ)"
                await _answer(send, 422, _invalid(message))
                return
            headers = [(b"content-type", stored.content_type.encode())] if stored.content_type else []
            await send({"type": "http.response.start", "status": stored.status, "headers": [*headers, _REPLAYED]})
            await send({"type": "http.response.body", "body": stored.body})
            return

        status = 0
        content_type = ""
        chunks: list[bytes] = []

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_receive, recording_send)
        answer = b"".join(chunks)
        if status >= 500 or status in NOT_KEPT or not status or len(answer) > MAX_STORED_BODY:
            return
        try:
            await run_in_threadpool(
                self.store.keep, key, caller, StoredAnswer(method, path, digest, status, content_type, answer)
            )
        except CorralError as exc:  # applied and answered; a retry after this would be applied again
            log.warning("%s %s: answer for Idempotency-Key not kept: %s", method, path, exc.message)


_REPLAYED = (b"idempotent-replayed", b"true")


def _key_of(scope: Scope) -> str | None:
    if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
        return None
    for name, value in scope.get("headers", []):
        if name.lower() == HEADER:
            return str(value.decode("latin-1").strip())
    return None


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _invalid(message: str) -> dict[str, Any]:
    return {"error": "invalid", "message": message, "field": "Idempotency-Key"}


async def _answer(send: Send, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
