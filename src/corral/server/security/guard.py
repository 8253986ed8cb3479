"""The request guard: an ASGI middleware in front of the whole app (API and UI) that bounds request bodies and
authenticates API calls before a byte of their body is read.

Why a middleware: FastAPI reads and parses a body before it runs any dependency, so a 300 MiB body sent with bad
(or no) credentials would be read, parsed and held in memory before the 401. Here:
- a declared `Content-Length` over the limit gets 413 at once; a streamed (chunked) body is counted as it is
  received and the read fails with 413 once past the limit, so nothing past it is ever buffered;
- `/v1` calls (all but the few anyone may make: agent registration, the CA certificate) are authenticated first:
  a wrong key pair gets 401 (a throttled address 429) without its body being read, and the principal found is
  handed to `server/security/auth.require_admin` through the scope;
- endpoints anyone may call take a smaller body (`public_max_body_bytes`).
Websockets are not touched: their frames are capped by uvicorn's `ws_max_size` and their handlers authenticate.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.model.errors import CorralError, PayloadTooLarge
from corral.server.security.access_rules import RULES, RuleKind
from corral.server.security.auth import PRINCIPAL_SCOPE_KEY, authenticate_request, client_address

# Paths anyone may call without a key pair (server/security/access_rules.py; the UI's pages authenticate by session
# cookie).
PUBLIC_API_PATHS = frozenset(path for (_, path), rule in RULES.items() if rule.kind is RuleKind.PUBLIC)
PUBLIC_PATHS = frozenset({*PUBLIC_API_PATHS, "/healthz", "/ui/login"})
FORWARDED_FOR = b"x-corral-forwarded-for"  # the UI's login probe names the browser (security/auth.client_address)
FORWARD_TOKEN = b"x-corral-forward-token"


class BodyTooLarge(StarletteHTTPException):
    """Raised by the guarded `receive` once a streamed body passes the limit; rendered as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {_size(limit)}")


class RequestGuard:
    def __init__(self, app: ASGIApp, *, app_state: Any, max_body: int, public_max_body: int) -> None:
        self.app = app
        self.app_state = app_state
        self.max_body = max_body
        self.public_max_body = public_max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.public_max_body if path in PUBLIC_PATHS else self.max_body
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _error(send, 400, {"error": "invalid", "message": "Content-Length is not a number"})
                return
            if length > limit:
                await _corral_error(
                    send,
                    PayloadTooLarge(
                        f"request body of {_size(length)} is over the limit of {_size(limit)}", field="body"
                    ),
                )
                return
        if path.startswith("/v1/") and path not in PUBLIC_API_PATHS:
            client = scope.get("client")
            address = client_address(
                self.app_state,
                str(client[0]) if client else "",
                _text(headers.get(FORWARDED_FOR)),
                _text(headers.get(FORWARD_TOKEN)),
            )
            authorization = headers.get(b"authorization")
            try:
                principal = await authenticate_request(
                    self.app_state, authorization.decode("latin-1") if authorization is not None else None, address
                )
            except CorralError as exc:
                await _corral_error(send, exc)
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal
        await self._guarded(scope, receive, send, limit)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # not turned into a response by the app (e.g. read by a plain ASGI route)
            if started:
                raise
            await _error(send, 413, {"error": "too_large", "message": exc.detail, "field": "body"})


async def _corral_error(send: Send, exc: CorralError) -> None:
    extra: list[tuple[bytes, bytes]] = []
    retry_after = getattr(exc, "retry_after", None)  # TooManyRequests (and any error that says when to retry)
    if isinstance(retry_after, (int, float)):
        extra.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await _error(send, exc.status, exc.to_dict(), extra)


async def _error(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),  # the rest of an unread body is not waited for
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.0f} MiB"
    if count >= 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count} bytes"
