"""Repository of environment certificates (issue 19 item 3), each key sealed at rest (store/sealing.py).

Why keys leave this class only through `bundles()`: the orchestrator sends a certificate's key to an agent only
with the desired set of a host that runs a container of a load balancer naming it (server/control/cert_delivery.py);
`Certificate` (what the API, events and logs see) has the certificate's facts and never the key. `update` replaces
a certificate and key under the same name (a renewal): every LB naming it reloads with the new one.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral.model import ids
from corral.model.certificates import (
    CertificateInfo,
    haproxy_bundle,
    read_certificate,
    validate_certificate_name,
)
from corral.model.errors import Conflict, NotFound
from corral.store.repository import Store
from corral.store.sealing import Sealer, Unsealable
from corral.store.tables import CertificateRow


@dataclass(frozen=True)
class Certificate:
    """A certificate as the API shows it: never its key."""

    id: str
    environment_id: str
    name: str
    info: CertificateInfo
    created_at: float
    updated_at: float


class CertificateStore:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.session = store.session
        self.sealer = Sealer(data_dir)

    def create(self, environment_id: str, name: str, cert_pem: str, key_pem: str) -> Certificate:
        """A new certificate; Conflict when the environment has one of that name (replace it with `update`)."""
        validate_certificate_name(name)
        now = time.time()
        info = read_certificate(cert_pem, key_pem, now=now)
        row = CertificateRow(id=ids.new_id("cert"), environment_id=environment_id, name=name, created_at=now)
        _fill(row, cert_pem, self.sealer.seal(key_pem), info, now)
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"certificate {name} already exists in this environment", field="name") from exc
        return _certificate(row)

    def update(self, environment_id: str, name: str, cert_pem: str, key_pem: str) -> Certificate:
        """Replace the certificate and key of `name` (a renewal)."""
        now = time.time()
        info = read_certificate(cert_pem, key_pem, now=now)
        with self.session() as session:
            row = self._row(session, environment_id, name)
            _fill(row, cert_pem, self.sealer.seal(key_pem), info, now)
            session.flush()
            return _certificate(row)

    def list(self, environment_id: str) -> builtins.list[Certificate]:
        with self.session() as session:
            query = (
                select(CertificateRow)
                .where(CertificateRow.environment_id == environment_id)
                .order_by(CertificateRow.name)
            )
            return [_certificate(row) for row in session.scalars(query)]

    def get(self, environment_id: str, name: str) -> Certificate:
        with self.session() as session:
            return _certificate(self._row(session, environment_id, name))

    def delete(self, environment_id: str, name: str) -> Certificate:
        with self.session() as session:
            row = self._row(session, environment_id, name)
            certificate = _certificate(row)
            session.delete(row)
            return certificate

    def bundles(self, environment_id: str, names: Iterable[str]) -> dict[str, str]:
        """name -> HAProxy's PEM bundle (chain + key) of the named certificates, for agents only (never a response
        or log); missing ones and those whose key cannot be decrypted are left out (the LB says it waits)."""
        wanted = set(names)
        if not wanted:
            return {}
        with self.session() as session:
            rows = session.scalars(
                select(CertificateRow).where(
                    CertificateRow.environment_id == environment_id, CertificateRow.name.in_(wanted)
                )
            ).all()
        result: dict[str, str] = {}
        for row in rows:
            try:
                result[row.name] = haproxy_bundle(row.cert_pem, self.sealer.unseal(row.key_encrypted))
            except Unsealable:
                continue
        return result

    @staticmethod
    def _row(session: Session, environment_id: str, name: str) -> CertificateRow:
        row = session.scalars(
            select(CertificateRow).where(CertificateRow.environment_id == environment_id, CertificateRow.name == name)
        ).first()
        if row is None:
            raise NotFound(f"certificate {name!r} not found in this environment", field="certificate")
        return row


def _fill(row: CertificateRow, cert_pem: str, key_sealed: str, info: CertificateInfo, now: float) -> None:
    row.cert_pem = cert_pem.strip() + "\n"
    row.key_encrypted = key_sealed
    row.subject = info.subject[:255]
    row.sans = ",".join(info.sans)
    row.issuer = info.issuer
    row.fingerprint = info.fingerprint
    row.not_before = info.not_before
    row.not_after = info.not_after
    row.chain_length = info.chain_length
    row.updated_at = now


def _certificate(row: CertificateRow) -> Certificate:
    info = CertificateInfo(
        subject=row.subject,
        sans=tuple(s for s in row.sans.split(",") if s),
        issuer=row.issuer,
        not_before=row.not_before,
        not_after=row.not_after,
        fingerprint=row.fingerprint,
        chain_length=row.chain_length,
    )
    return Certificate(row.id, row.environment_id, row.name, info, row.created_at, row.updated_at)
