"""Access control as data: environment roles, what each role may do, and who may grant what.

Why a table: every API route declares which resource of which environment it touches and whether it reads or
changes it (server/security/authorization.py); this module alone answers "may this role do that". The matrix follows
Rancher 1.x (owner > member > restricted > read-only) so that its users find the roles they know:
- owner: everything in the environment, including its members and settings;
- member: everything but members and environment settings;
- restricted: stacks, services, containers, registries; hosts only read;
- read-only: read everything, change nothing (not even an environment key), no exec or shell (logs are readable).
Admins (the bootstrap key, users flagged admin) manage users, global settings and catalogs, and act as owner of
every environment. Nobody grants a role above their own (CVE-2022-31247, CVE-2019-14436).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from corral.model.errors import InvalidInput


class Role(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"
    RESTRICTED = "restricted"
    READ_ONLY = "read-only"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {Role.READ_ONLY: 0, Role.RESTRICTED: 1, Role.MEMBER: 2, Role.OWNER: 3}


class Action(enum.StrEnum):
    READ = "read"
    WRITE = "write"


class Resource(enum.StrEnum):
    """What a route touches inside an environment (`GLOBAL_*` ones are outside any environment)."""

    ENVIRONMENT = "environment"  # the environment's own settings (policy, quotas, approval, removal)
    MEMBERS = "members"
    HOSTS = "hosts"  # hosts, their labels and actions, registration tokens
    STACKS = "stacks"  # stacks, services, containers, start/stop/scale/upgrade, catalog installs
    EXEC = "exec"  # exec and shell sessions
    LOGS = "logs"  # container logs and stats
    REGISTRIES = "registries"
    KEYS = "keys"  # environment API keys
    AUDIT = "audit"


# The lowest role allowed to (resource, action); absent pairs are refused to every role.
_MINIMUM: dict[tuple[Resource, Action], Role] = {
    (Resource.ENVIRONMENT, Action.READ): Role.READ_ONLY,
    (Resource.ENVIRONMENT, Action.WRITE): Role.OWNER,
    (Resource.MEMBERS, Action.READ): Role.READ_ONLY,
    (Resource.MEMBERS, Action.WRITE): Role.OWNER,
    (Resource.HOSTS, Action.READ): Role.READ_ONLY,
    (Resource.HOSTS, Action.WRITE): Role.MEMBER,
    (Resource.STACKS, Action.READ): Role.READ_ONLY,
    (Resource.STACKS, Action.WRITE): Role.RESTRICTED,
    (Resource.EXEC, Action.WRITE): Role.RESTRICTED,
    (Resource.LOGS, Action.READ): Role.READ_ONLY,
    (Resource.REGISTRIES, Action.READ): Role.READ_ONLY,
    (Resource.REGISTRIES, Action.WRITE): Role.RESTRICTED,
    (Resource.KEYS, Action.READ): Role.READ_ONLY,
    (Resource.KEYS, Action.WRITE): Role.RESTRICTED,  # read-only changes nothing; a key's role is capped (may_grant)
    (Resource.AUDIT, Action.READ): Role.OWNER,
}


def permits(role: Role | None, resource: Resource, action: Action) -> bool:
    """May a caller with `role` in an environment (None: no role there) do `action` on `resource`?"""
    if role is None:
        return False
    minimum = _MINIMUM.get((resource, action))
    return minimum is not None and role.at_least(minimum)


def may_grant(granter: Role | None, granted: Role, *, admin: bool = False) -> bool:
    """Nobody hands out a role above their own; admins may grant any."""
    return admin or (granter is not None and granter.at_least(granted))


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {value!r}: choose one of {choices}", field=field) from None


def strongest(roles: list[Role]) -> Role | None:
    """A user in several groups (and directly) holds the highest of their roles."""
    return max(roles, key=lambda r: r.rank) if roles else None


@dataclass(frozen=True)
class Grant:
    """A role in one environment for a user (by id) or a group (by name, from LDAP)."""

    environment_id: str
    subject_kind: str  # "user" | "group"
    subject: str
    role: Role


USERNAME_MAX = 64


def validate_username(value: str) -> str:
    name = value.strip()
    if not name or len(name) > USERNAME_MAX:
        raise InvalidInput(f"a user name has 1 to {USERNAME_MAX} characters", field="username")
    if not all(ch.isalnum() or ch in "._-@" for ch in name):
        raise InvalidInput(f"user name {name!r} may contain only letters, digits and . _ - @", field="username")
    return name


PASSWORD_MIN = 8
PASSWORD_MAX = 1024


def validate_password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password")
    return value


@dataclass(frozen=True)
class User:
    id: str
    username: str
    source: str  # "local" | "ldap"
    admin: bool
    disabled: bool
    created_at: float


@dataclass(frozen=True)
class KeyInfo:
    """An API key as listed: never its secret."""

    access_key: str
    kind: str
    description: str
    created_at: float
    user_id: str | None = None
    environment_id: str | None = None
    role: str | None = None
    expires_at: float | None = None
    last_used_at: float | None = None
    container_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    auth_kind: str
    access_key: str
    environment_id: str | None
    action: str
    resource: str
    status: int
    address: str


CREATE_AGENT_LABELS = ("io.rancher.container.create_agent", "io.corral.container.create_agent")
AGENT_ROLE_LABELS = ("io.rancher.container.agent.role", "io.corral.container.agent.role")
# Rancher's `agent.role` values and our role names; a workload never gets more than `restricted` (CVE-2018-20321:
# whoever may deploy a stack must not mint themselves an owner's key through a label).
_SERVICE_ROLES = {
    "environment": Role.RESTRICTED,
    "restricted": Role.RESTRICTED,
    "read-only": Role.READ_ONLY,
    "readonly": Role.READ_ONLY,
}
SERVICE_ACCOUNT_MAX = Role.RESTRICTED


def service_account_role(labels: dict[str, str]) -> Role | None:
    """The role a container's service account gets from its labels (None: it asked for no credentials)."""
    if not any(labels.get(name, "").strip().lower() == "true" for name in CREATE_AGENT_LABELS):
        return None
    asked = next((labels[name].strip().lower() for name in AGENT_ROLE_LABELS if labels.get(name)), "environment")
    role = _SERVICE_ROLES.get(asked)
    if role is None:
        choices = ", ".join(sorted(_SERVICE_ROLES))
        raise InvalidInput(
            f"label {AGENT_ROLE_LABELS[0]}={asked!r}: a container's credentials may have the roles {choices} "
            f"(at most {SERVICE_ACCOUNT_MAX.value})",
            field="labels",
        )
    return role
