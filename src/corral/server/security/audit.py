"""The audit trail: every mutating /v1 call and every exec session, recorded after it is answered.

Why an ASGI middleware: it sees the final status of every call, including the ones refused before a handler ran
(401, 403, 404), and it sees no body: what is recorded is who (user or key, auth kind), what (method and route,
the path called, the environment), when, from where, and the result code. Secrets in bodies therefore never reach
the log. Retention is bounded by age and by rows (Rancher's audit tables grew to tens of GB): pruned every
`PRUNE_EVERY` records.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.model.access import AuditEntry
from corral.model.entities import Principal
from corral.server.security.auth import ACCESS_SCOPE_KEY, PRINCIPAL_SCOPE_KEY, TOUCHED_ENVIRONMENT_KEY

log = logging.getLogger("corral.server.audit")

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_SOCKETS = ("/exec",)  # interactive sessions (exec, shell)
NOT_AUDITED = frozenset({"/v1/stacks/plan"})  # POSTs that change nothing, as a GET (`up --plan`)
ACTOR_SCOPE_KEY = "corral.audit.actor"  # a handler may name the actor of a call made without a key (login)
PRUNE_EVERY = 500
DAY = 86_400.0


class AuditTrail:
    def __init__(self, app: ASGIApp, *, app_state: Any) -> None:
        self.app = app
        self.app_state = app_state
        self._recorded = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        audited = (
            path.startswith("/v1/")
            and path not in NOT_AUDITED
            and (
                (scope["type"] == "http" and scope.get("method") in AUDITED_METHODS)
                or (scope["type"] == "websocket" and path.endswith(AUDITED_SOCKETS))
            )
        )
        if not audited:
            await self.app(scope, receive, send)
            return
        status = 500

        async def watched_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and int(message.get("code") or 1000) >= 4000:
                status = int(message["code"]) - 4000  # refused or failed: 4000 + the HTTP status
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        entry = entry_of(scope, status)
        try:
            await run_in_threadpool(self.app_state.access.record, entry)
            self._recorded += 1
            if self._recorded % PRUNE_EVERY == 0:
                await run_in_threadpool(prune, self.app_state)
        except Exception:
            log.exception("could not record an audit entry for %s", entry.action)


def entry_of(scope: Scope, status: int) -> AuditEntry:
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    access = scope.get(ACCESS_SCOPE_KEY)
    route = scope.get("route")
    method = "WS" if scope["type"] == "websocket" else str(scope.get("method", ""))
    client = scope.get("client")
    if isinstance(principal, Principal):
        actor = principal.username or principal.access_key
        kind, key = principal.kind.value, principal.access_key
    else:
        actor, kind, key = str(scope.get(ACTOR_SCOPE_KEY) or "anonymous"), "none", ""
    return AuditEntry(
        id=0,
        at=time.time(),
        actor=actor,
        auth_kind=kind,
        access_key=key,
        environment_id=getattr(access, "environment_id", None) or scope.get(TOUCHED_ENVIRONMENT_KEY),
        action=f"{method} {getattr(route, 'path', scope.get('path', ''))}",
        resource=str(scope.get("path", "")),
        status=status,
        address=str(client[0]) if client else "",
    )


def prune(app_state: Any) -> int:
    settings = app_state.settings
    older_than = time.time() - settings.audit_retention_days * DAY
    removed: int = app_state.access.prune_audit(older_than=older_than, keep_rows=settings.audit_max_rows)
    return removed
