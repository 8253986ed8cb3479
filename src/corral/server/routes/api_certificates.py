"""REST routes for environment certificates: create, list, show, replace, remove (issue 19 item 3).

Why a module of its own: a certificate's key crosses this edge in one direction only. It is accepted in a request
body and handed to the store (which seals it); every response and event is built from `Certificate`, which has no
key, and the body model hides its input from validation errors. A change wakes the orchestrator: the hosts running a
load balancer that names the certificate get it with their next `desired` set (server/control/cert_delivery.py). Each
view says the subject, SANs, expiry and a warning when it expires within 30 days.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.model.certificates import MAX_PEM_BYTES
from corral.model.entities import Principal
from corral.server.security.auth import require_admin
from corral.store.certificates import Certificate, CertificateStore
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class CertificateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    cert: str = Field(max_length=MAX_PEM_BYTES)
    key: str = Field(max_length=MAX_PEM_BYTES, repr=False)


class CertificateCreate(CertificateBody):
    name: str = Field(max_length=64)


def certificate_view(certificate: Certificate, now: float | None = None) -> dict[str, Any]:
    info = certificate.info
    return {
        "id": certificate.id,
        "environment_id": certificate.environment_id,
        "name": certificate.name,
        "subject": info.subject,
        "sans": list(info.sans),
        "issuer": info.issuer,
        "not_before": info.not_before,
        "not_after": info.not_after,
        "fingerprint": info.fingerprint,
        "chain_length": info.chain_length,
        "warning": info.warning(time.time() if now is None else now),
        "created_at": certificate.created_at,
        "updated_at": certificate.updated_at,
    }


def certificates_of(request: Request) -> CertificateStore:
    certificates: CertificateStore = request.app.state.certificates
    return certificates


def _changed(request: Request, action: str, certificate: Certificate) -> dict[str, Any]:
    view = certificate_view(certificate)
    request.app.state.bus.publish("certificate", action, view, certificate.environment_id)
    request.app.state.orchestrator.trigger()
    return view


def _environment_id(request: Request, ref: str) -> str:
    store: Store = request.app.state.store
    return store.get_environment(ref).id


@router.post("/environments/{ref}/certificates", status_code=201)
def create_certificate(request: Request, ref: str, body: CertificateCreate, _: Admin) -> dict[str, Any]:
    env_id = _environment_id(request, ref)
    return _changed(request, "created", certificates_of(request).create(env_id, body.name, body.cert, body.key))


@router.get("/environments/{ref}/certificates")
def list_certificates(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    env_id = _environment_id(request, ref)
    now = time.time()
    return {"data": [certificate_view(c, now) for c in certificates_of(request).list(env_id)]}


@router.get("/environments/{ref}/certificates/{name}")
def get_certificate(request: Request, ref: str, name: str, _: Admin) -> dict[str, Any]:
    return certificate_view(certificates_of(request).get(_environment_id(request, ref), name))


@router.put("/environments/{ref}/certificates/{name}")
def replace_certificate(request: Request, ref: str, name: str, body: CertificateBody, _: Admin) -> dict[str, Any]:
    env_id = _environment_id(request, ref)
    return _changed(request, "updated", certificates_of(request).update(env_id, name, body.cert, body.key))


@router.delete("/environments/{ref}/certificates/{name}", status_code=204)
def delete_certificate(request: Request, ref: str, name: str, _: Admin) -> Response:
    _changed(request, "removed", certificates_of(request).delete(_environment_id(request, ref), name))
    return Response(status_code=204)
