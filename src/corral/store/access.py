"""Users, environment memberships, scoped API keys and the audit log (issue 16).

Why one store beside the repository: these rows answer "who is this and what may they do where"; the repository
keeps environments, hosts and the key check every request makes (store/keys.py). Passwords are argon2 digests
(argon2-cffi), never reversible; key secrets are SHA-256 digests of 256 random bits, as the other keys are.
Audit rows hold no request body, and retention is bounded by age and by count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral.model import ids
from corral.model.access import AuditEntry, Grant, KeyInfo, Role, User, strongest
from corral.model.entities import KeyKind
from corral.model.errors import Conflict, NotFound, Unauthorized
from corral.store.repository import Store
from corral.store.tables import ApiKeyRow, AuditRow, MembershipRow, SlotRow, UserRow

_HASHER = PasswordHasher()
_DUMMY_DIGEST = _HASHER.hash("a password nobody has")  # unknown users cost the same time as wrong passwords
KEY_PREFIXES = {
    KeyKind.ACCOUNT: "U",
    KeyKind.ENVIRONMENT: "E",
    KeyKind.SESSION: "S",
    KeyKind.SERVICE: "C",
}


class AccessStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- users ----------------------------------------------------------------------------------------------------

    def create_user(self, username: str, password: str | None, *, admin: bool = False, source: str = "local") -> User:
        row = UserRow(
            id=ids.new_id("user"),
            username=username,
            password_digest=_HASHER.hash(password) if password is not None else None,
            source=source,
            admin=admin,
            disabled=False,
            created_at=time.time(),
        )
        try:
            with self.store.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"a user named {username!r} already exists", field="username") from exc
        return _user(row)

    def list_users(self) -> list[User]:
        with self.store.session() as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.username)).all()]

    def count_users(self) -> int:
        with self.store.session() as session:
            return session.scalar(select(func.count()).select_from(UserRow)) or 0

    def get_user(self, ref: str) -> User:
        with self.store.session() as session:
            return _user(_user_row(session, ref))

    def find_user(self, username: str) -> User | None:
        with self.store.session() as session:
            row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
            return _user(row) if row is not None else None

    def update_user(
        self, ref: str, *, disabled: bool | None = None, admin: bool | None = None, password: str | None = None
    ) -> User:
        """Disabling a user ends their sessions at once (keys of a disabled user are refused by store/keys.py;
        session keys are removed as well, so re-enabling does not revive an old login)."""
        with self.store.session() as session:
            row = _user_row(session, ref)
            if disabled is not None:
                row.disabled = disabled
                if disabled:
                    session.execute(
                        delete(ApiKeyRow).where(ApiKeyRow.user_id == row.id, ApiKeyRow.kind == KeyKind.SESSION.value)
                    )
            if admin is not None:
                row.admin = admin
            if password is not None:
                row.password_digest = _HASHER.hash(password)
                session.execute(
                    delete(ApiKeyRow).where(ApiKeyRow.user_id == row.id, ApiKeyRow.kind == KeyKind.SESSION.value)
                )
            return _user(row)

    def delete_user(self, ref: str) -> User:
        with self.store.session() as session:
            row = _user_row(session, ref)
            user = _user(row)
            session.execute(delete(ApiKeyRow).where(ApiKeyRow.user_id == row.id))
            session.execute(
                delete(MembershipRow).where(MembershipRow.subject_kind == "user", MembershipRow.subject == row.id)
            )
            session.delete(row)
            return user

    def verify_password(self, username: str, password: str) -> User:
        """The user whose password this is; Unauthorized (same message, same cost) for any mismatch."""
        with self.store.session() as session:
            row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
            digest = row.password_digest if row is not None and row.password_digest else _DUMMY_DIGEST
            try:
                _HASHER.verify(digest, password)
                matched = row is not None and row.password_digest is not None
            except (VerificationError, InvalidHashError):
                matched = False
            if not matched or row is None or row.disabled:
                raise Unauthorized("wrong user name or password, or the user is disabled")
            if _HASHER.check_needs_rehash(digest):
                row.password_digest = _HASHER.hash(password)
            return _user(row)

    # -- memberships ----------------------------------------------------------------------------------------------

    def set_member(self, environment_id: str, subject_kind: str, subject: str, role: Role) -> Grant:
        with self.store.session() as session:
            row = session.scalars(
                select(MembershipRow).where(
                    MembershipRow.environment_id == environment_id,
                    MembershipRow.subject_kind == subject_kind,
                    MembershipRow.subject == subject,
                )
            ).first()
            if row is None:
                row = MembershipRow(
                    id=ids.new_id("mb"),
                    environment_id=environment_id,
                    subject_kind=subject_kind,
                    subject=subject,
                    role=role.value,
                    created_at=time.time(),
                )
                session.add(row)
            else:
                row.role = role.value
            return _grant(row)

    def remove_member(self, environment_id: str, subject_kind: str, subject: str) -> None:
        with self.store.session() as session:
            result = session.execute(
                delete(MembershipRow).where(
                    MembershipRow.environment_id == environment_id,
                    MembershipRow.subject_kind == subject_kind,
                    MembershipRow.subject == subject,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"{subject_kind} {subject!r} is not a member of this environment", field="member")

    def list_members(self, environment_id: str) -> list[Grant]:
        with self.store.session() as session:
            query = select(MembershipRow).where(MembershipRow.environment_id == environment_id)
            return [_grant(r) for r in session.scalars(query.order_by(MembershipRow.created_at)).all()]

    def roles_of(self, user_id: str, groups: Iterable[str] = ()) -> dict[str, Role]:
        """Each environment the user may see, with their strongest role there (directly or through a group)."""
        subjects = [("user", user_id), *(("group", g) for g in groups)]
        found: dict[str, list[Role]] = {}
        with self.store.session() as session:
            for kind, subject in subjects:
                query = select(MembershipRow).where(
                    MembershipRow.subject_kind == kind, MembershipRow.subject == subject
                )
                for row in session.scalars(query).all():
                    found.setdefault(row.environment_id, []).append(Role(row.role))
        return {env: role for env, roles in found.items() if (role := strongest(roles)) is not None}

    # -- keys -----------------------------------------------------------------------------------------------------

    def create_key(
        self,
        kind: KeyKind,
        *,
        user_id: str | None = None,
        environment_id: str | None = None,
        role: Role | None = None,
        description: str = "",
        expires_at: float | None = None,
        container_id: str | None = None,
    ) -> tuple[KeyInfo, str]:
        """Mint a key; returns its listing and the secret, which is never stored and never shown again."""
        secret = ids.new_secret()
        row = ApiKeyRow(
            access_key=ids.new_access_key(KEY_PREFIXES.get(kind, "K")),
            secret_digest=ids.digest(secret),
            kind=kind.value,
            description=description,
            created_at=time.time(),
            user_id=user_id,
            environment_id=environment_id,
            role=role.value if role is not None else None,
            expires_at=expires_at,
            container_id=container_id,
        )
        with self.store.session() as session:
            session.add(row)
        return _key(row), secret

    def list_keys(self, *, user_id: str | None = None, environment_id: str | None = None) -> list[KeyInfo]:
        """Account and environment keys (agents' and sessions' keys are not listed), filtered."""
        query = select(ApiKeyRow).where(
            ApiKeyRow.kind.in_([KeyKind.ACCOUNT.value, KeyKind.ENVIRONMENT.value, KeyKind.SERVICE.value])
        )
        if user_id is not None:
            query = query.where(ApiKeyRow.user_id == user_id)
        if environment_id is not None:
            query = query.where(ApiKeyRow.environment_id == environment_id)
        with self.store.session() as session:
            return [_key(r) for r in session.scalars(query.order_by(ApiKeyRow.created_at)).all()]

    def get_key(self, access_key: str) -> KeyInfo:
        with self.store.session() as session:
            row = session.get(ApiKeyRow, access_key)
            if row is None:
                raise NotFound(f"API key {access_key!r} not found", field="key")
            return _key(row)

    def delete_key(self, access_key: str) -> None:
        with self.store.session() as session:
            session.execute(delete(ApiKeyRow).where(ApiKeyRow.access_key == access_key))

    def delete_keys(self, *, container_ids: Iterable[str] = (), expired_before: float | None = None) -> int:
        """Remove service keys of containers that are gone and keys that expired; returns how many."""
        removed = 0
        with self.store.session() as session:
            wanted = list(container_ids)
            if wanted:
                result = session.execute(delete(ApiKeyRow).where(ApiKeyRow.container_id.in_(wanted)))
                removed += result.rowcount  # type: ignore[attr-defined]
            if expired_before is not None:
                result = session.execute(
                    delete(ApiKeyRow).where(ApiKeyRow.expires_at.is_not(None), ApiKeyRow.expires_at < expired_before)
                )
                removed += result.rowcount  # type: ignore[attr-defined]
        return removed

    def delete_orphan_service_keys(self) -> int:
        """Service keys whose container slot is gone (the key stopped working then already: store/keys.py)."""
        with self.store.session() as session:
            live = select(SlotRow.id)
            result = session.execute(
                delete(ApiKeyRow).where(ApiKeyRow.kind == KeyKind.SERVICE.value, ApiKeyRow.container_id.not_in(live))
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def service_keys(self) -> dict[str, tuple[str, str]]:
        """Each container's service account: container id -> (access key, sealed secret)."""
        with self.store.session() as session:
            query = select(ApiKeyRow).where(ApiKeyRow.kind == KeyKind.SERVICE.value)
            return {
                r.container_id: (r.access_key, r.sealed_secret or "")
                for r in session.scalars(query).all()
                if r.container_id
            }

    def create_service_key(
        self, container_id: str, environment_id: str, role: Role, secret: str, sealed_secret: str
    ) -> str:
        """A container's key; its secret is kept sealed (store/sealing.py) to be sent to its host again."""
        access_key = ids.new_access_key(KEY_PREFIXES[KeyKind.SERVICE])
        with self.store.session() as session:
            session.add(
                ApiKeyRow(
                    access_key=access_key,
                    secret_digest=ids.digest(secret),
                    kind=KeyKind.SERVICE.value,
                    description=f"service account of container {container_id}",
                    created_at=time.time(),
                    environment_id=environment_id,
                    role=role.value,
                    container_id=container_id,
                    sealed_secret=sealed_secret,
                )
            )
        return access_key

    # -- audit ----------------------------------------------------------------------------------------------------

    def record(self, entry: AuditEntry) -> None:
        with self.store.session() as session:
            session.add(
                AuditRow(
                    at=entry.at,
                    actor=entry.actor[:255],
                    auth_kind=entry.auth_kind[:16],
                    access_key=entry.access_key[:64],
                    environment_id=entry.environment_id,
                    action=entry.action[:255],
                    resource=entry.resource[:2000],
                    status=entry.status,
                    address=entry.address[:64],
                )
            )

    def audit(
        self,
        *,
        environment_ids: Iterable[str] | None = None,
        actor: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first; page with `before_id` = the last id of the previous page."""
        query = select(AuditRow)
        if environment_ids is not None:
            query = query.where(AuditRow.environment_id.in_(list(environment_ids)))
        if actor:
            query = query.where(AuditRow.actor == actor)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        if before_id is not None:
            query = query.where(AuditRow.id < before_id)
        with self.store.session() as session:
            rows = session.scalars(query.order_by(AuditRow.id.desc()).limit(limit)).all()
            return [_audit(r) for r in rows]

    def prune_audit(self, *, older_than: float, keep_rows: int) -> int:
        """Drop entries older than `older_than` (UNIX time) and all but the newest `keep_rows`."""
        with self.store.session() as session:
            removed = session.execute(delete(AuditRow).where(AuditRow.at < older_than)).rowcount  # type: ignore[attr-defined]
            cutoff = session.scalar(select(AuditRow.id).order_by(AuditRow.id.desc()).offset(keep_rows).limit(1))
            if cutoff is not None:
                removed += session.execute(delete(AuditRow).where(AuditRow.id <= cutoff)).rowcount  # type: ignore[attr-defined]
            return int(removed)


def _user_row(session: Session, ref: str) -> UserRow:
    row = session.get(UserRow, ref) or session.scalars(select(UserRow).where(UserRow.username == ref)).first()
    if row is None:
        raise NotFound(f"user {ref!r} not found", field="user")
    return row


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        source=row.source,
        admin=row.admin,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _grant(row: MembershipRow) -> Grant:
    return Grant(
        environment_id=row.environment_id, subject_kind=row.subject_kind, subject=row.subject, role=Role(row.role)
    )


def _key(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        access_key=row.access_key,
        kind=row.kind,
        description=row.description,
        created_at=row.created_at,
        user_id=row.user_id,
        environment_id=row.environment_id,
        role=row.role,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        container_id=row.container_id,
    )


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        auth_kind=row.auth_kind,
        access_key=row.access_key,
        environment_id=row.environment_id,
        action=row.action,
        resource=row.resource,
        status=row.status,
        address=row.address,
    )
