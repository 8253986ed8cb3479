"""Table definitions (SQLAlchemy 2 declarative, typed): every table of the server's database.

Why one module: the repositories of store/ share these rows, and the journal (store/journal.py) maps them onto the
in-memory state's kinds, so the whole schema is read in one place. Times are UNIX seconds (float) so that SQLite
and PostgreSQL store and compare them the same way. Every change goes through an Alembic migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EnvironmentRow(Base):
    __tablename__ = "environments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    orchestration: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    network: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # NetworkSettings; {} = the defaults
    allow: Mapped[list[str]] = mapped_column(JSON, default=list)  # allowed dangerous settings (model/policy.py)
    require_approval: Mapped[bool] = mapped_column(default=False)  # token-registered hosts start `pending`
    quotas: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # limits over the defaults (model/quotas.py)


class ApiKeyRow(Base):
    """An access key and the SHA-256 digest of its secret. `kind` is `admin` or `agent` (scoped to one host)."""

    __tablename__ = "api_keys"

    access_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    host_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("hosts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    # access control (issue 16): whose key, which environment and role it is limited to, when it stops working
    user_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    environment_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    container_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # service accounts
    sealed_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # service accounts: re-sent to agents


class UserRow(Base):
    """A person: local (argon2 password digest) or from LDAP (no password stored)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_digest: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="local")
    admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[float] = mapped_column(Float)


class MembershipRow(Base):
    """A role in one environment for a user (subject = user id) or an LDAP group (subject = group name)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("environment_id", "subject_kind", "subject"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """One mutating call or exec session: who, what, where from, the result. Never a body."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(255))  # user name, or the key's access key
    auth_kind: Mapped[str] = mapped_column(String(16))
    access_key: Mapped[str] = mapped_column(String(64))
    environment_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(255))  # "POST /v1/stacks"
    resource: Mapped[str] = mapped_column(Text)  # the path called
    status: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(64), default="")


class RegistrationTokenRow(Base):
    __tablename__ = "registration_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    secret_digest: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: never
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: unlimited
    uses: Mapped[int] = mapped_column(Integer, default=0)  # counted by a conditional UPDATE (store/repository.py)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # revoked tokens stay listed


class HostRow(Base):
    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_hosts_environment_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str] = mapped_column(Text, default="")
    driver: Mapped[str] = mapped_column(String(32))
    driver_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    address: Mapped[str] = mapped_column(String(64), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    schedulable: Mapped[bool] = mapped_column(default=True)
    evacuating: Mapped[bool] = mapped_column(default=False)
    # image reference -> architectures of the copy on this host's engine (reported by its agent)
    images: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    overlay_slice: Mapped[str] = mapped_column(String(64), default="")  # its slice of the environment's subnet
    # peer host id -> {"ok": bool, "since": float, "error": str}: the overlay probe's last result (agent-reported)
    connectivity: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    overlay_key: Mapped[str] = mapped_column(String(64), default="")  # the agent's WireGuard public key
    overlay_port: Mapped[int] = mapped_column(default=0)  # its WireGuard listen port
    # its engine's volumes as its agent last reported them (model/volumes.py volume_to_wire), migration 0024
    volumes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class HostContainerRow(Base):
    """A container as last reported by a host's agent (observed state, not desired state)."""

    __tablename__ = "host_containers"

    host_id: Mapped[str] = mapped_column(String(64), ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    docker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    image: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created: Mapped[float] = mapped_column(Float, default=0.0)
    ip: Mapped[str] = mapped_column(String(64), default="")
    health: Mapped[str] = mapped_column(String(32), default="")  # "" (no check) | initializing | healthy | ...
    health_reason: Mapped[str] = mapped_column(Text, default="")


class StackRow(Base):
    """A stack: its parsed spec and the files it came from (kept verbatim for export and upgrades)."""

    __tablename__ = "stacks"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_stacks_environment_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # where it came from when installed from a catalog: {catalog, template, version, answers}; {} otherwise
    catalog: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ServiceRow(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("stack_id", "name", name="uq_services_stack_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stack_id: Mapped[str] = mapped_column(String(64), ForeignKey("stacks.id", ondelete="CASCADE"), index=True)
    environment_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer, default=0)  # start order (depends_on)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    scale: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(32), default="active")  # active | upgrading | upgraded | ...
    state_since: Mapped[float] = mapped_column(Float, default=0.0)
    upgrade: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # strategy, previous spec, progress


class SlotRow(Base):
    """A container Corral wants (service index on a host); its docker id comes from the host's reports."""

    __tablename__ = "container_slots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(64), index=True)
    stack_id: Mapped[str] = mapped_column(String(64), ForeignKey("stacks.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[str] = mapped_column(String(64), ForeignKey("services.id", ondelete="CASCADE"), index=True)
    stack: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63))
    index: Mapped[int] = mapped_column(Integer)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    running: Mapped[bool] = mapped_column(default=True)
    start_requested_at: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    retired: Mapped[bool] = mapped_column(default=False)  # an old container kept (stopped) for a rollback
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # > 0: started by a rolling upgrade (name suffix)
    ip: Mapped[str] = mapped_column(String(64), default="")  # its overlay address (IPAM), "" when none
    # host ports the server picked for `ports: ["80"]` entries: [[container_port, protocol, host_port], ...]
    host_ports: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)


class LeftoverRow(Base):
    """A removed slot whose container may still run (orchestrator/occupancy.py): its index gets no new container
    until the container is observed stopped or its host is disconnected; then the row goes."""

    __tablename__ = "slot_leftovers"

    slot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(64), index=True)
    stack: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63))
    index: Mapped[int] = mapped_column(Integer)
    host_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))  # its Docker name
    ip: Mapped[str] = mapped_column(String(64), default="")  # its overlay address (retain_ip: the next one's)
    created_at: Mapped[float] = mapped_column(Float)


class CatalogRow(Base):
    """A catalog source: a directory or a git repository (cloned under the data dir); global or per environment."""

    __tablename__ = "catalogs"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_catalogs_environment_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(64), default="")  # "" = global (every environment sees it)
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # "dir" | "git" | "builtin"
    url: Mapped[str] = mapped_column(Text, default="")  # the directory, or the git URL
    branch: Mapped[str] = mapped_column(String(255), default="")
    commit: Mapped[str] = mapped_column(String(64), default="")  # the git commit last fetched
    refreshed_at: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")  # why the last refresh failed, "" when it worked
    created_at: Mapped[float] = mapped_column(Float)


class RegistryRow(Base):
    """Credentials of a private registry for one environment; the password only ever stored encrypted."""

    __tablename__ = "registries"
    __table_args__ = (UniqueConstraint("environment_id", "server", name="uq_registries_environment_server"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    server: Mapped[str] = mapped_column(String(255))  # host[:port], as in image references
    username: Mapped[str] = mapped_column(String(255))
    password_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class SecretRow(Base):
    """An environment secret (model/files.py); the value only ever stored encrypted (store/sealing.py)."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_secrets_environment_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    value_encrypted: Mapped[str] = mapped_column(Text)
    stack: Mapped[str] = mapped_column(String(255), default="")  # the stack whose compose file defined it, if any
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class CertificateRow(Base):
    """An environment certificate for load balancers (model/certificates.py): the certificate in clear (it is
    public), its key only ever stored encrypted (store/sealing.py)."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_certificates_environment_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    cert_pem: Mapped[str] = mapped_column(Text)
    key_encrypted: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(255))
    sans: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    issuer: Mapped[str] = mapped_column(Text, default="")
    fingerprint: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[float] = mapped_column(Float)
    not_after: Mapped[float] = mapped_column(Float)
    chain_length: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """A published event kept for history (store/events.py): bounded by count, pruned oldest first."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # the order, a paging cursor
    time: Mapped[float] = mapped_column(Float, index=True)
    environment_id: Mapped[str] = mapped_column(String(64), default="", index=True)  # "" = not of an environment
    resource_type: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IdempotencyRow(Base):
    """A mutating call's stored answer under its Idempotency-Key (store/idempotency.py), kept about a day."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    caller: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the caller's credentials
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    body_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(128), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # the answer's body (latin-1 text of its bytes)
    created_at: Mapped[float] = mapped_column(Float, index=True)
