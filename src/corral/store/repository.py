"""Repositories: the only place that turns rows into model entities and back.

Why one class per concern over a shared session factory: callers (the server) think in environments, hosts, keys
and tokens; they never see a session or a row. Unique-constraint violations come back as `Conflict` naming the field.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Row, Select, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corral.model import ids
from corral.model.admission import APPROVAL_REASON, TokenUsage
from corral.model.entities import (
    Environment,
    Host,
    HostFacts,
    HostState,
    KeyKind,
    ObservedContainer,
    Orchestration,
    Principal,
    RegistrationToken,
)
from corral.model.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from corral.model.network import NetworkSettings
from corral.model.volumes import ObservedVolume, volume_to_wire, volumes_from_wire
from corral.store.changes import identity_version
from corral.store.journal import deliver, wrote
from corral.store.keys import KeyUsage, principal_of_key
from corral.store.outage import outage_as_unavailable
from corral.store.tables import (
    ApiKeyRow,
    EnvironmentRow,
    HostContainerRow,
    HostRow,
    RegistrationTokenRow,
)

TOKEN_PREFIX = "crt_"  # noqa: S105 - a prefix, not a secret
PRINCIPAL_SECONDS = 5.0  # the longest a principal read for a key is reused (even with no write since)
MAX_PRINCIPALS = 10_000


@dataclass(frozen=True)
class _Principal:
    version: int  # `identity_version` before it was read
    digest: str  # of the key's secret
    until: float  # reused before this time (its key's expiry, or PRINCIPAL_SECONDS after the read)
    principal: Principal


# INSERT ... ON CONFLICT of the dialects the store runs on (store/database.py); another one merges (a read first)
UPSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.key_usage = KeyUsage(engine)
        self._principals: dict[str, _Principal] = {}  # access key -> who it was, while nothing was written since

    @property
    def session_factory(self) -> sessionmaker[Session]:
        """Its sessions' factory, for listeners scoped to this store (store/journal.py `watch`)."""
        return self._sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; a database that cannot be used now raises `Unavailable` (store/outage.py)."""
        with outage_as_unavailable(), self._sessions.begin() as session:
            yield session
        deliver(session)  # committed and closed: the in-memory state reads what changed (store/journal.py)

    # -- environments -------------------------------------------------------------------------------------------

    def create_environment(
        self,
        name: str,
        orchestration: Orchestration,
        description: str = "",
        network: NetworkSettings | None = None,
        allow: Iterable[str] = (),
        *,
        require_approval: bool = False,
        quotas: Mapping[str, int] | None = None,
    ) -> Environment:
        row = EnvironmentRow(
            id=ids.new_id("env"),
            name=name,
            orchestration=orchestration.value,
            description=description,
            created_at=time.time(),
            network=(network or NetworkSettings()).to_dict(),
            allow=sorted(allow),
            require_approval=require_approval,
            quotas=dict(quotas or {}),
        )
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"an environment named {name!r} already exists", field="name") from exc
        return _environment(row)

    def update_environment(self, ref: str, **changes: Any) -> Environment:
        """Change settings of an environment (by id or name): description, allow, require_approval."""
        environment_id = self.get_environment(ref).id
        with self.session() as session:
            row = session.get(EnvironmentRow, environment_id)
            if row is None:
                raise NotFound(f"environment {ref!r} not found", field="environment")
            for key, value in changes.items():
                setattr(row, key, value)
            return _environment(row)

    def list_environments(self) -> list[Environment]:
        with self.session() as session:
            rows = session.scalars(select(EnvironmentRow).order_by(EnvironmentRow.name)).all()
            return [_environment(row) for row in rows]

    def get_environment(self, ref: str) -> Environment:
        """Look an environment up by id or by name."""
        with self.session() as session:
            row = (
                session.get(EnvironmentRow, ref)
                or session.scalars(select(EnvironmentRow).where(EnvironmentRow.name == ref)).first()
            )
            if row is None:
                raise NotFound(f"environment {ref!r} not found", field="environment")
            return _environment(row)

    def delete_environment(self, environment_id: str) -> None:
        with self.session() as session:
            row = session.get(EnvironmentRow, environment_id)
            if row is None:
                raise NotFound(f"environment {environment_id!r} not found", field="environment")
            session.execute(delete(RegistrationTokenRow).where(RegistrationTokenRow.environment_id == row.id))
            session.delete(row)

    # -- API keys -----------------------------------------------------------------------------------------------

    def create_api_key(self, kind: KeyKind, *, host_id: str | None = None, description: str = "") -> tuple[str, str]:
        """Mint a key pair; only the digest of the secret is stored. Returns (access_key, secret_key)."""
        row, secret = _new_api_key_row(kind, host_id, description)
        with self.session() as session:
            session.add(row)
        return row.access_key, secret

    def count_api_keys(self, kind: KeyKind | None) -> int:
        """Keys of one kind (None: of every kind)."""
        query = select(func.count()).select_from(ApiKeyRow)
        if kind is not None:
            query = query.where(ApiKeyRow.kind == kind.value)
        with self.session() as session:
            return session.scalar(query) or 0

    def authenticate(self, access_key: str, secret: str) -> Principal:
        """Checked on every call, so a removed key, an expired one or a disabled user stops at once: a principal
        read once is reused only while no write a principal may be read from has committed since
        (`identity_version`: any change of a key or a user is one, and for a container's own key any change of the
        workloads; agents' container reports are not), before its key expires, and for at most
        `PRINCIPAL_SECONDS`."""
        presented = ids.digest(secret)
        now = time.time()
        known = self._principals.get(access_key)
        if (
            known is not None
            and known.version == identity_version(of_container=known.principal.kind is KeyKind.SERVICE)
            and now < known.until
            and hmac.compare_digest(known.digest, presented)
        ):
            self.key_usage.seen(access_key)
            return known.principal
        versions = identity_version(), identity_version(of_container=True)
        with self.session() as session:
            row = session.get(ApiKeyRow, access_key)
            if row is None or not hmac.compare_digest(presented, row.secret_digest):
                raise Unauthorized("invalid API key or secret")
            principal = principal_of_key(session, row)
            until = min(now + PRINCIPAL_SECONDS, row.expires_at if row.expires_at is not None else math.inf)
        if len(self._principals) >= MAX_PRINCIPALS:
            self._principals.clear()
        version = versions[1] if principal.kind is KeyKind.SERVICE else versions[0]
        self._principals[access_key] = _Principal(version, row.secret_digest, until, principal)
        self.key_usage.seen(access_key)
        return principal

    # -- registration tokens ------------------------------------------------------------------------------------

    def create_registration_token(
        self,
        environment_id: str,
        description: str = "",
        *,
        expires_at: float | None = None,
        max_uses: int | None = None,
    ) -> tuple[RegistrationToken, str]:
        """Returns the token record and the token string (`crt<id>.<secret>`), which is never stored."""
        token_id = ids.new_id("rt")
        secret = ids.new_secret()
        row = RegistrationTokenRow(
            id=token_id,
            environment_id=environment_id,
            secret_digest=ids.digest(secret),
            description=description,
            created_at=time.time(),
            expires_at=expires_at,
            max_uses=max_uses,
            uses=0,
            revoked_at=None,
        )
        with self.session() as session:
            session.add(row)
        return _token(row), f"{TOKEN_PREFIX}{token_id}.{secret}"

    def list_registration_tokens(self, environment_id: str | None = None) -> list[RegistrationToken]:
        with self.session() as session:
            query = select(RegistrationTokenRow).order_by(RegistrationTokenRow.created_at)
            if environment_id is not None:
                query = query.where(RegistrationTokenRow.environment_id == environment_id)
            return [_token(row) for row in session.scalars(query).all()]

    def revoke_registration_token(self, token_id: str) -> RegistrationToken:
        """Revoke a token (it stays listed as `revoked`); revoking it again keeps the first time. Idempotent."""
        with self.session() as session:
            row = session.get(RegistrationTokenRow, token_id)
            if row is None:
                raise NotFound(f"registration token {token_id!r} not found", field="token")
            if row.revoked_at is None:
                row.revoked_at = time.time()
            return _token(row)

    def admit_host(
        self, token: str, name: str, *, labels: dict[str, str], facts: HostFacts, address: str
    ) -> tuple[Host, str, str]:
        """Spend one use of a registration token and create the custom host it admits with its agent's key pair
        (returned: host, access key, secret), in one transaction: a refused host (duplicate name) does not spend a
        use, and a failed commit leaves no host without a key behind (the agent's retry would find its name
        taken). The use is counted by a conditional UPDATE, so of two agents racing for a token's last use exactly
        one wins. A forged token is Unauthorized; an expired, used-up or revoked one Forbidden, saying which. In an
        environment that requires approval the host starts pending."""
        token_id, _, secret = token.removeprefix(TOKEN_PREFIX).partition(".")
        with self.session() as session:
            row = session.get(RegistrationTokenRow, token_id) if token.startswith(TOKEN_PREFIX) else None
            if row is None or not secret or not ids.secret_matches(secret, row.secret_digest):
                raise Unauthorized("registration token is invalid")
            now = time.time()
            refusal = _usage(row).refusal(now)
            if refusal:
                raise Forbidden(refusal, field="token")
            table = RegistrationTokenRow
            spent = session.execute(
                update(table)
                .where(
                    table.id == token_id,
                    table.revoked_at.is_(None),
                    or_(table.expires_at.is_(None), table.expires_at > now),
                    or_(table.max_uses.is_(None), table.uses < table.max_uses),
                )
                .values(uses=table.uses + 1)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(spent) != 1:  # another registration took the last use (or a revoke came) meanwhile
                session.refresh(row)
                raise Forbidden(_usage(row).refusal(now) or "registration token is no longer valid", field="token")
            env = session.get(EnvironmentRow, row.environment_id)
            if env is None:
                raise NotFound("the registration token's environment no longer exists", field="environment")
            pending = env.require_approval
            host = _new_host_row(
                env.id,
                name,
                driver="custom",
                state=HostState.PENDING if pending else HostState.REGISTERING,
                state_reason=APPROVAL_REASON if pending else "",
                labels=labels,
                facts=facts,
                address=address,
            )
            session.add(host)
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict(f"a host named {name!r} already exists in this environment", field="name") from exc
            key, secret = _new_api_key_row(KeyKind.AGENT, host.id, f"agent of {name}")
            session.add(key)
            return _host(host, 0), key.access_key, secret

    def approve_host(self, host_id: str) -> Host:
        """A pending host becomes `registering` (its agent, when connected, turns it active). Conflict otherwise."""
        with self.session() as session:
            row = session.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"host {host_id!r} not found", field="host")
            if row.state != HostState.PENDING.value:
                raise Conflict(f"host {row.name!r} is not waiting for approval (it is {row.state})", field="host")
            row.state, row.state_reason = HostState.REGISTERING.value, "approved"
            return _host(row, self._container_counts(session, [host_id]).get(host_id, 0))

    # -- hosts --------------------------------------------------------------------------------------------------

    def create_host(
        self,
        environment_id: str,
        name: str,
        *,
        driver: str,
        state: HostState,
        labels: dict[str, str],
        driver_options: dict[str, Any] | None = None,
        facts: HostFacts | None = None,
        address: str = "",
    ) -> Host:
        row = _new_host_row(
            environment_id,
            name,
            driver=driver,
            state=state,
            labels=labels,
            driver_options=driver_options,
            facts=facts,
            address=address,
        )
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(f"a host named {name!r} already exists in this environment", field="name") from exc
        return _host(row, 0)

    def list_hosts(self, environment_id: str | None = None, *, container_counts: bool = True) -> list[Host]:
        """`container_counts=False` leaves each host's `container_count` 0 and saves the `count(*)` query (the
        orchestrator, which lists hosts on every pass, never shows it)."""
        with self.session() as session:
            query = select(HostRow).order_by(HostRow.name)
            if environment_id is not None:
                query = query.where(HostRow.environment_id == environment_id)
            rows = session.scalars(query).all()
            counts = self._container_counts(session, [row.id for row in rows]) if container_counts else {}
            return [_host(row, counts.get(row.id, 0)) for row in rows]

    def hosts_by_id(self, host_ids: Iterable[str]) -> dict[str, Host]:
        """These hosts (those that exist), by id: one query, for views of a few containers."""
        wanted = list(set(host_ids))
        if not wanted:
            return {}
        with self.session() as session:
            rows = session.scalars(select(HostRow).where(HostRow.id.in_(wanted))).all()
            counts = self._container_counts(session, [row.id for row in rows])
            return {row.id: _host(row, counts.get(row.id, 0)) for row in rows}

    def get_host(self, host_id: str) -> Host:
        with self.session() as session:
            row = session.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"host {host_id!r} not found", field="host")
            return _host(row, self._container_counts(session, [host_id]).get(host_id, 0))

    def find_host(self, environment_id: str, ref: str) -> Host:
        """A host of the environment by id or by name."""
        with self.session() as session:
            row = session.scalars(
                select(HostRow).where(
                    HostRow.environment_id == environment_id, (HostRow.id == ref) | (HostRow.name == ref)
                )
            ).first()
            if row is None:
                raise NotFound(f"host {ref!r} not found in this environment", field="host")
            return _host(row, self._container_counts(session, [row.id]).get(row.id, 0))

    def host_driver_options(self, host_id: str) -> dict[str, Any]:
        with self.session() as session:
            row = session.get(HostRow, host_id)
            return dict(row.driver_options) if row is not None else {}

    def update_host(self, host_id: str, *, counted: bool = True, **changes: Any) -> Host:
        """Change columns of a host: state, state_reason, labels, facts (HostFacts), address, last_seen,
        driver_options, images (reference -> architectures), volumes (ObservedVolumes), overlay_slice, connectivity,
        overlay_key, overlay_port. The host returned has its container count unless `counted` is False (0: the
        caller shows none, or reads it from memory)."""
        with self.session() as session:
            row = session.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"host {host_id!r} not found", field="host")
            for key, value in changes.items():
                if key == "facts":
                    value = _facts_dict(value)
                elif key == "state":
                    value = HostState(value).value
                elif key == "images":
                    value = {ref: list(archs) for ref, archs in value.items()}
                elif key == "volumes":
                    value = [volume_to_wire(v) for v in value]
                setattr(row, key, value)
            return _host(row, self._container_counts(session, [host_id]).get(host_id, 0) if counted else 0)

    def delete_host(self, host_id: str) -> None:
        with self.session() as session:
            session.execute(delete(HostContainerRow).where(HostContainerRow.host_id == host_id))
            session.execute(delete(ApiKeyRow).where(ApiKeyRow.host_id == host_id))
            session.execute(delete(HostRow).where(HostRow.id == host_id))

    # -- observed containers ------------------------------------------------------------------------------------

    def replace_host_containers(self, host_id: str, containers: Iterable[ObservedContainer]) -> bool:
        """Store an agent's full report: only the rows that differ are written (an unchanged report writes
        nothing, so views cached until the next write stay valid). Returns whether anything changed."""
        wanted = {c.docker_id: _container_values(host_id, c) for c in containers}
        with self.session() as session:
            current = {
                row.docker_id: _container(row)
                for row in session.execute(
                    select(HostContainerRow.__table__).where(HostContainerRow.host_id == host_id)
                )
            }
            gone = [docker_id for docker_id in current if docker_id not in wanted]
            if gone:
                session.execute(
                    delete(HostContainerRow).where(
                        HostContainerRow.host_id == host_id, HostContainerRow.docker_id.in_(gone)
                    )
                )
            changed = [
                values
                for docker_id, values in wanted.items()
                if current.get(docker_id) != _container(SimpleNamespace(**values))
            ]
            _upsert_containers(session, host_id, changed)
            return bool(gone or changed)

    def upsert_host_container(self, host_id: str, container: ObservedContainer) -> None:
        """One statement (INSERT ... ON CONFLICT DO UPDATE): an agent's container events come one by one, and the
        in-memory state takes the row as written instead of reading it back."""
        with self.session() as session:
            _upsert_containers(session, host_id, [_container_values(host_id, container)])

    def mark_host_containers(self, host_id: str, *, state: str, status: str) -> bool:
        """Overwrite the state of every container reported on the host (its engine is gone: `unknown`) until the
        agent's next snapshot tells the truth again. Returns whether any row changed."""
        with self.session() as session:
            result = session.execute(
                update(HostContainerRow)
                .where(HostContainerRow.host_id == host_id, HostContainerRow.state != state)
                .values(state=state, status=status)
            )
            return bool(getattr(result, "rowcount", 0))

    def remove_host_container(self, host_id: str, docker_id: str) -> None:
        with self.session() as session:
            session.execute(
                delete(HostContainerRow).where(
                    HostContainerRow.host_id == host_id, HostContainerRow.docker_id == docker_id
                )
            )

    def reported_container(self, host_id: str, docker_id: str) -> ObservedContainer | None:
        """The container as the host's agent last reported it (None: not reported, or removed since)."""
        with self.session() as session:
            row = session.get(HostContainerRow, (host_id, docker_id))
            return _container(row) if row is not None else None

    def list_host_containers(self, host_id: str) -> list[ObservedContainer]:
        with self.session() as session:
            rows = session.scalars(
                select(HostContainerRow).where(HostContainerRow.host_id == host_id).order_by(HostContainerRow.name)
            ).all()
            return [_container(row) for row in rows]

    def list_all_host_containers(self, environment_id: str | None = None) -> list[tuple[str, ObservedContainer]]:
        """Every reported container with its host id (one query, for the orchestrator's snapshot)."""
        with self.session() as session:
            query = select(HostContainerRow.__table__)
            if environment_id is not None:
                query = query.join(HostRow, HostRow.id == HostContainerRow.host_id).where(
                    HostRow.environment_id == environment_id
                )
            return _plain_containers(session, query)

    def host_containers_of(
        self, host_ids: Iterable[str], *, labelled: tuple[str, Iterable[str]] | None = None
    ) -> list[tuple[str, ObservedContainer]]:
        """The reported containers of these hosts with their host id (one query); with `labelled` (key, values),
        only those whose label `key` has one of the values."""
        wanted = list(set(host_ids))
        if not wanted:
            return []
        with self.session() as session:
            query = select(HostContainerRow.__table__).where(HostContainerRow.host_id.in_(wanted))
            if labelled is not None:
                key, values = labelled
                query = query.where(HostContainerRow.labels[key].as_string().in_(list(set(values))))
            return _plain_containers(session, query)

    @staticmethod
    def _container_counts(session: Session, host_ids: list[str]) -> dict[str, int]:
        if not host_ids:
            return {}
        query = (
            select(HostContainerRow.host_id, func.count())
            .where(HostContainerRow.host_id.in_(host_ids))
            .group_by(HostContainerRow.host_id)
        )
        return {host_id: count for host_id, count in session.execute(query).all()}


def _environment(row: EnvironmentRow) -> Environment:
    return Environment(
        id=row.id,
        name=row.name,
        orchestration=Orchestration(row.orchestration),
        description=row.description,
        created_at=row.created_at,
        network=NetworkSettings.from_dict(dict(row.network or {})),
        allow=frozenset(row.allow or ()),
        require_approval=bool(row.require_approval),
        quotas={str(k): int(v) for k, v in (row.quotas or {}).items()},
    )


def _token(row: RegistrationTokenRow) -> RegistrationToken:
    return RegistrationToken(
        id=row.id,
        environment_id=row.environment_id,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses or 0,
        revoked_at=row.revoked_at,
    )


def _usage(row: RegistrationTokenRow) -> TokenUsage:
    return TokenUsage(row.id, row.expires_at, row.max_uses, row.uses or 0, row.revoked_at)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _new_host_row(
    environment_id: str,
    name: str,
    *,
    driver: str,
    state: HostState,
    labels: dict[str, str],
    state_reason: str = "",
    driver_options: dict[str, Any] | None = None,
    facts: HostFacts | None = None,
    address: str = "",
) -> HostRow:
    return HostRow(
        id=ids.new_id("host"),
        environment_id=environment_id,
        name=name,
        state=state.value,
        state_reason=state_reason,
        driver=driver,
        driver_options=driver_options or {},
        address=address,
        labels=dict(labels),
        facts=_facts_dict(facts or HostFacts()),
        last_seen=None,
        created_at=time.time(),
        schedulable=True,
        evacuating=False,
    )


def _facts_dict(facts: HostFacts) -> dict[str, Any]:
    return {
        "hostname": facts.hostname,
        "arch": facts.arch,
        "os": facts.os,
        "kernel": facts.kernel,
        "cpus": facts.cpus,
        "memory_bytes": facts.memory_bytes,
        "engine_version": facts.engine_version,
    }


def _host(row: HostRow, container_count: int) -> Host:
    return Host(
        id=row.id,
        environment_id=row.environment_id,
        name=row.name,
        state=HostState(row.state),
        state_reason=row.state_reason,
        driver=row.driver,
        address=row.address,
        labels=dict(row.labels or {}),
        facts=HostFacts.from_dict(dict(row.facts or {})),
        container_count=container_count,
        last_seen=row.last_seen,
        created_at=row.created_at,
        schedulable=row.schedulable,
        evacuating=row.evacuating,
        images={str(ref): tuple(archs) for ref, archs in (row.images or {}).items() if isinstance(archs, list)},
        overlay_slice=row.overlay_slice or "",
        connectivity={str(k): dict(v) for k, v in (row.connectivity or {}).items() if isinstance(v, dict)},
        overlay_key=row.overlay_key or "",
        overlay_port=row.overlay_port or 0,
        volumes=_volumes(row.volumes),
    )


def _volumes(value: object) -> tuple[ObservedVolume, ...]:
    try:
        return volumes_from_wire(value or [])
    except InvalidInput:  # written by this code only; a bad row shows no volumes rather than failing the host
        return ()


def _upsert_containers(session: Session, host_id: str, rows: list[dict[str, Any]]) -> None:
    """Insert or overwrite these reported containers of one host (one INSERT ... ON CONFLICT DO UPDATE, executed for
    every row), each handed to the in-memory state as written (`journal.wrote`)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect not in UPSERTS:
        for values in rows:
            session.merge(HostContainerRow(**values))
        return
    statement = UPSERTS[dialect](HostContainerRow)
    changes = {name: statement.excluded[name] for name in rows[0] if name not in ("host_id", "docker_id")}
    session.execute(statement.on_conflict_do_update(index_elements=["host_id", "docker_id"], set_=changes), rows)
    for values in rows:
        wrote(session, "containers", (host_id, values["docker_id"]), _container(SimpleNamespace(**values)))


def _container_values(host_id: str, c: ObservedContainer) -> dict[str, Any]:
    return {
        "host_id": host_id,
        "docker_id": c.docker_id,
        "name": c.name,
        "image": c.image,
        "state": c.state,
        "status": c.status,
        "exit_code": c.exit_code,
        "restart_count": c.restart_count,
        "labels": dict(c.labels),
        "created": c.created,
        "ip": c.ip,
        "health": c.health,
        "health_reason": c.health_reason,
    }


def _plain_containers(session: Session, query: Select[Any]) -> list[tuple[str, ObservedContainer]]:
    """(host id, container) of each row, read as plain rows (not ORM objects: many rows, read often)."""
    return [(row["host_id"], _container(SimpleNamespace(**row))) for row in session.execute(query).mappings()]


def _container(row: HostContainerRow | SimpleNamespace | Row[Any]) -> ObservedContainer:
    return ObservedContainer(
        docker_id=row.docker_id,
        name=row.name,
        image=row.image,
        state=row.state,
        status=row.status,
        exit_code=row.exit_code,
        restart_count=row.restart_count,
        labels=dict(row.labels or {}),
        created=row.created,
        ip=row.ip,
        health=row.health or "",
        health_reason=row.health_reason or "",
    )


def _new_api_key_row(kind: KeyKind, host_id: str | None, description: str) -> tuple[ApiKeyRow, str]:
    """A new key pair's row (only the digest of the secret is stored) and its secret."""
    secret = ids.new_secret()
    row = ApiKeyRow(
        access_key=ids.new_access_key("A" if kind is KeyKind.ADMIN else "H"),
        secret_digest=ids.digest(secret),
        kind=kind.value,
        host_id=host_id,
        description=description,
        created_at=time.time(),
    )
    return row, secret
