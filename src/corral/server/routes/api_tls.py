"""TLS routes: the CA certificate for agents and remote CLIs (`GET /v1/ca`, no authentication), the server
certificate's rotation (`POST /v1/server/certificate/rotate`, admin) and the CA's (`POST /v1/server/ca/rotate`,
`GET /v1/server/ca/rotation`, admin; server/hub/ca_rotation.py).

Why the CA is public: it is a public certificate, and a new agent fetches it before it holds any credential; the
agent trusts it only when its digest equals the one in the join token it was given. Rotation issues a new server
certificate from the same CA and serves it from the next handshake on; connected agents are asked to reconnect
(close 1012), so each checks the new certificate against the CA it pinned, with nobody restarting them by hand.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from corral.model.entities import Principal
from corral.model.errors import NotFound
from corral.server.hub.ca_rotation import CaRotation
from corral.server.security.auth import require_admin
from corral.server.security.tls import ServerTls

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
log = logging.getLogger("corral.tls")

CLOSE_SERVICE_RESTART = 1012  # RFC 6455: "the server is restarting", the agent reconnects after its backoff


def tls_of(request: Request) -> ServerTls:
    tls: ServerTls | None = request.app.state.tls
    if tls is None:
        raise NotFound("this server serves plain HTTP (--insecure-http): it has no certificate")
    return tls


@router.get("/ca", include_in_schema=True)
def get_ca(request: Request) -> Response:
    """The CA certificate (PEM) that issued this server's certificate; its digest is in every join token."""
    tls = tls_of(request)
    return Response(tls.ca_pem, media_type="application/x-pem-file", headers={"X-Corral-CA-Digest": tls.ca_digest})


@router.get("/server/certificate")
def get_certificate(request: Request, _: Admin) -> dict[str, Any]:
    return asdict(tls_of(request).info())


@router.post("/server/certificate/rotate")
async def rotate_certificate(request: Request, _: Admin) -> dict[str, Any]:
    tls = tls_of(request)
    info = await run_in_threadpool(tls.rotate)
    log.info("server certificate rotated: serial %x, valid until %s", info.serial, info.not_after)
    hub = request.app.state.hub
    reconnecting = 0
    for session in list(hub.sessions.values()):
        with contextlib.suppress(Exception):
            await session.websocket.close(code=CLOSE_SERVICE_RESTART, reason="server certificate rotated")
            reconnecting += 1
    return {**asdict(info), "agents_reconnecting": reconnecting}


def _rotation(request: Request) -> CaRotation:
    tls_of(request)
    rotation: CaRotation = request.app.state.ca_rotation
    return rotation


@router.post("/server/ca/rotate")
async def rotate_ca(request: Request, _: Admin) -> dict[str, Any]:
    """Begin a CA rotation: the agents get the bundle (current + next CA); once they all confirmed it, the server
    switches to a certificate of the next CA and the old CA is dropped. The answer is the rotation's status."""
    return await _rotation(request).start()


@router.get("/server/ca/rotation")
def ca_rotation_status(request: Request, _: Admin) -> dict[str, Any]:
    return _rotation(request).status()
