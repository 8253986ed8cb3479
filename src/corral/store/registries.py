"""Repository of private registry credentials, the password encrypted at rest.

Agents must send the password to the registry, so it is sealed (store/sealing.py: Fernet under the data dir's
key), not digested. Losing the key makes the stored passwords unreadable: delete and re-add those registries.

The plain password leaves this class only through `credentials()`, which the orchestrator sends to the
environment's agents over their websocket; `Registry` (what the API shows) has no password at all.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from corral.model import ids
from corral.model.errors import Conflict, InvalidInput, NotFound, Unavailable
from corral.model.registries import MAX_PASSWORD, MAX_USERNAME, RegistryCredential, validate_server
from corral.store.repository import Store
from corral.store.sealing import KEY_FILE, Sealer, Unsealable
from corral.store.tables import RegistryRow

__all__ = ["KEY_FILE", "Registry", "RegistryStore"]


@dataclass(frozen=True)
class Registry:
    """A registry entry as the API shows it: never the password."""

    id: str
    environment_id: str
    server: str
    username: str
    created_at: float


class RegistryStore:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.session = store.session
        self.sealer = Sealer(data_dir)
        self.key_path = self.sealer.key_path

    def _encrypt(self, password: str) -> str:
        return self.sealer.seal(password)

    def _decrypt(self, row: RegistryRow) -> str:
        try:
            return self.sealer.unseal(row.password_encrypted)
        except Unsealable as exc:
            raise Unavailable(
                f"the password of registry {row.server} cannot be decrypted with {self.key_path} "
                "(was the key replaced?); delete and add the registry again"
            ) from exc

    # -- entries ------------------------------------------------------------------------------------------------

    def add(self, environment_id: str, server: str, username: str, password: str) -> Registry:
        server = validate_server(server)
        _check_credentials(username, password)
        row = RegistryRow(
            id=ids.new_id("reg"),
            environment_id=environment_id,
            server=server,
            username=username,
            password_encrypted=self._encrypt(password),
            created_at=time.time(),
        )
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"registry {server} already has credentials in this environment", field="server") from exc
        return _registry(row)

    def update(self, registry_id: str, *, username: str, password: str) -> Registry:
        _check_credentials(username, password)
        with self.session() as session:
            row = session.get(RegistryRow, registry_id)
            if row is None:
                raise NotFound(f"registry {registry_id!r} not found", field="registry")
            row.username = username
            row.password_encrypted = self._encrypt(password)
            return _registry(row)

    def list(self, environment_id: str | None = None) -> list[Registry]:
        with self.session() as session:
            query = select(RegistryRow).order_by(RegistryRow.server)
            if environment_id is not None:
                query = query.where(RegistryRow.environment_id == environment_id)
            return [_registry(row) for row in session.scalars(query)]

    def get(self, registry_id: str) -> Registry:
        with self.session() as session:
            row = session.get(RegistryRow, registry_id)
            if row is None:
                raise NotFound(f"registry {registry_id!r} not found", field="registry")
            return _registry(row)

    def delete(self, registry_id: str) -> Registry:
        with self.session() as session:
            row = session.get(RegistryRow, registry_id)
            if row is None:
                raise NotFound(f"registry {registry_id!r} not found", field="registry")
            registry = _registry(row)
            session.delete(row)
            return registry

    def credentials(self, environment_id: str) -> builtins.list[RegistryCredential]:
        """The environment's credentials with plain passwords: for its agents only, never for a response or log.
        An entry whose password cannot be decrypted is left out (its pulls then fail with the registry's reason)."""
        with self.session() as session:
            rows = session.scalars(select(RegistryRow).where(RegistryRow.environment_id == environment_id)).all()
        result: builtins.list[RegistryCredential] = []
        for row in sorted(rows, key=lambda r: r.server):
            try:
                result.append(RegistryCredential(row.server, row.username, self._decrypt(row)))
            except Unavailable:
                continue
        return result


def _check_credentials(username: str, password: str) -> None:
    if not username.strip() or len(username) > MAX_USERNAME or any(c in username for c in "\r\n\t"):
        raise InvalidInput(f"username must be 1 to {MAX_USERNAME} characters on one line", field="username")
    if not password or len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password must be 1 to {MAX_PASSWORD} characters", field="password")


def _registry(row: RegistryRow) -> Registry:
    return Registry(
        id=row.id,
        environment_id=row.environment_id,
        server=row.server,
        username=row.username,
        created_at=row.created_at,
    )
