"""Repository of environment secrets, each value sealed at rest (store/sealing.py: Fernet under the data dir's key).

Why values leave this class only through `values()`: the orchestrator sends a secret to an agent only with the
desired set of a host that runs a container naming it; `Secret` (what the API, events and logs see) has no value.
A secret a stack's compose file defines (`secrets: {x: {file: ...}}`) is stored as `<stack>_<name>` with its
stack recorded (`stack`), as Docker Compose names project resources; `put` replaces its value on the next `up`.
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
from corral.model.errors import Conflict, NotFound, Unavailable
from corral.model.files import validate_secret_name, validate_secret_value
from corral.store.repository import Store
from corral.store.sealing import Sealer, Unsealable
from corral.store.tables import SecretRow


@dataclass(frozen=True)
class Secret:
    """A secret as the API shows it: never its value."""

    id: str
    environment_id: str
    name: str
    stack: str
    created_at: float
    updated_at: float


class SecretStore:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.session = store.session
        self.sealer = Sealer(data_dir)

    def create(self, environment_id: str, name: str, value: str) -> Secret:
        """A new secret; Conflict when the environment has one of that name (secrets are replaced by rm + create)."""
        validate_secret_name(name)
        validate_secret_value(value)
        now = time.time()
        row = SecretRow(
            id=ids.new_id("sec"),
            environment_id=environment_id,
            name=name,
            value_encrypted=self.sealer.seal(value),
            stack="",
            created_at=now,
            updated_at=now,
        )
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"secret {name} already exists in this environment", field="name") from exc
        return _secret(row)

    def put(self, environment_id: str, name: str, value: str, *, stack: str) -> Secret:
        """Create or replace the secret `name` a stack's compose file defines; Conflict if another owns the name."""
        validate_secret_name(name)
        validate_secret_value(value)
        now = time.time()
        with self.session() as session:
            row = session.scalars(
                select(SecretRow).where(SecretRow.environment_id == environment_id, SecretRow.name == name)
            ).first()
            if row is None:
                row = SecretRow(id=ids.new_id("sec"), environment_id=environment_id, name=name, created_at=now)
                row.stack = stack
                session.add(row)
            elif row.stack != stack:
                owner = f"stack {row.stack}" if row.stack else "`corral secrets create`"
                raise Conflict(f"secret {name} exists already, created by {owner}", field="secrets")
            elif self._unseal(row) == value:
                return _secret(row)
            row.value_encrypted = self.sealer.seal(value)
            row.updated_at = now
            session.flush()
            return _secret(row)

    def list(self, environment_id: str) -> builtins.list[Secret]:
        with self.session() as session:
            query = select(SecretRow).where(SecretRow.environment_id == environment_id).order_by(SecretRow.name)
            return [_secret(row) for row in session.scalars(query)]

    def get(self, environment_id: str, name: str) -> Secret:
        with self.session() as session:
            row = self._row(session, environment_id, name)
            return _secret(row)

    def delete(self, environment_id: str, name: str) -> Secret:
        with self.session() as session:
            row = self._row(session, environment_id, name)
            secret = _secret(row)
            session.delete(row)
            return secret

    def values(self, environment_id: str, names: Iterable[str]) -> dict[str, str]:
        """Plain values of the named secrets (for agents only, never a response or log); missing ones are left out,
        as are those that cannot be decrypted (their containers then wait, saying so)."""
        wanted = set(names)
        if not wanted:
            return {}
        with self.session() as session:
            rows = session.scalars(
                select(SecretRow).where(SecretRow.environment_id == environment_id, SecretRow.name.in_(wanted))
            ).all()
        result: dict[str, str] = {}
        for row in rows:
            try:
                result[row.name] = self._unseal(row)
            except Unavailable:
                continue
        return result

    def _unseal(self, row: SecretRow) -> str:
        try:
            return self.sealer.unseal(row.value_encrypted)
        except Unsealable as exc:
            raise Unavailable(
                f"secret {row.name} cannot be decrypted with {self.sealer.key_path} (was the key replaced?); "
                "remove and create it again"
            ) from exc

    @staticmethod
    def _row(session: Session, environment_id: str, name: str) -> SecretRow:
        row = session.scalars(
            select(SecretRow).where(SecretRow.environment_id == environment_id, SecretRow.name == name)
        ).first()
        if row is None:
            raise NotFound(f"secret {name!r} not found in this environment", field="secret")
        return row


def _secret(row: SecretRow) -> Secret:
    return Secret(row.id, row.environment_id, row.name, row.stack, row.created_at, row.updated_at)
