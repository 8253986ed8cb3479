"""Frozen entities of the foundation: environments, hosts, their facts, registration tokens and observed containers.

Why frozen dataclasses: the pure core (scheduler, reconciler) works on snapshots; nothing may change one behind its
back. The store maps them to rows, the server to JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.model.network import NetworkSettings
from corral.model.volumes import ObservedVolume


class Orchestration(enum.StrEnum):
    CATTLE = "cattle"
    SWARM = "swarm"
    KUBERNETES = "kubernetes"


SUPPORTED_ORCHESTRATIONS = frozenset({Orchestration.CATTLE})


class HostState(enum.StrEnum):
    PROVISIONING = "provisioning"  # a driver is creating the machine; no agent yet
    REGISTERING = "registering"  # credentials exist, the agent has not connected yet
    PENDING = "pending"  # registered in an environment that requires approval; an admin has not approved it yet
    ACTIVE = "active"
    RECONNECTING = "reconnecting"  # agent connection lost or heartbeats missed, within the grace period
    ENGINE_DOWN = "engine-down"  # the agent talks but its Docker engine does not answer; `state_reason` says why
    DISCONNECTED = "disconnected"  # grace period over: its workloads may be rescheduled
    REMOVING = "removing"
    ERROR = "error"  # provisioning failed; `state_reason` says why


class Arch(enum.StrEnum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"
    ARMV7L = "armv7l"


_ARCH_ALIASES: dict[str, Arch] = {
    "x86_64": Arch.X86_64,
    "amd64": Arch.X86_64,
    "x64": Arch.X86_64,
    "aarch64": Arch.AARCH64,
    "arm64": Arch.AARCH64,
    "arm64v8": Arch.AARCH64,
    "armv7l": Arch.ARMV7L,
    "armv7": Arch.ARMV7L,
    "armhf": Arch.ARMV7L,
    "arm": Arch.ARMV7L,
    "arm/v7": Arch.ARMV7L,
}


def normalise_arch(raw: str) -> str:
    """Map the many spellings of a CPU architecture (uname, Docker, Go) to x86_64 / aarch64 / armv7l.

    Unknown spellings are returned lowercased rather than guessed.
    """
    key = raw.strip().lower()
    arch = _ARCH_ALIASES.get(key)
    return arch.value if arch is not None else key


@dataclass(frozen=True)
class Environment:
    id: str
    name: str
    orchestration: Orchestration
    description: str
    created_at: float
    network: NetworkSettings = field(default_factory=NetworkSettings)  # its managed overlay (model/network.py)
    allow: frozenset[str] = frozenset()  # the dangerous container settings it allows (model/policy.py)
    require_approval: bool = False  # hosts registering with a token stay `pending` until an admin approves them
    quotas: Mapping[str, int] = field(default_factory=dict)  # its own limits over the server's (model/quotas.py)


@dataclass(frozen=True)
class HostFacts:
    """What an agent reports about its machine and engine."""

    hostname: str = ""
    arch: str = ""
    os: str = ""
    kernel: str = ""
    cpus: int = 0
    memory_bytes: int = 0
    engine_version: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> HostFacts:
        def text(key: str) -> str:
            value = data.get(key, "")
            return value if isinstance(value, str) else str(value)

        def number(key: str) -> int:
            value = data.get(key, 0)
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

        return cls(
            hostname=text("hostname"),
            arch=normalise_arch(text("arch")) if text("arch") else "",
            os=text("os"),
            kernel=text("kernel"),
            cpus=number("cpus"),
            memory_bytes=number("memory_bytes"),
            engine_version=text("engine_version"),
        )


@dataclass(frozen=True)
class Host:
    id: str
    environment_id: str
    name: str
    state: HostState
    state_reason: str
    driver: str  # "custom" (registered with a token) or a provisioning driver such as "local"
    address: str  # the IP the agent connects from
    labels: dict[str, str] = field(default_factory=dict)
    facts: HostFacts = field(default_factory=HostFacts)
    container_count: int = 0
    last_seen: float | None = None
    created_at: float = 0.0
    schedulable: bool = True  # False: deactivated (cordoned), no new containers are placed on it
    evacuating: bool = False  # its containers are being moved to other hosts
    images: dict[str, tuple[str, ...]] = field(default_factory=dict)  # image reference -> archs (model/images.py)
    overlay_slice: str = ""  # its slice of the environment's overlay subnet (orchestrator/ipam.py), "" for none
    # its agent's overlay probes: peer host id -> {"ok": bool, "since": float, "error": str} (agent/connectivity.py)
    connectivity: dict[str, dict[str, object]] = field(default_factory=dict)
    overlay_key: str = ""  # its agent's WireGuard public key (base64), "" until its agent sent one
    overlay_port: int = 0  # its agent's WireGuard listen port
    volumes: tuple[ObservedVolume, ...] = ()  # its engine's volumes, as its agent last reported them (model/volumes.py)


@dataclass(frozen=True)
class ObservedContainer:
    """A container as an agent saw it on its engine (the truth about what runs)."""

    docker_id: str
    name: str
    image: str
    state: str  # created | running | paused | restarting | exited | dead
    status: str = ""
    exit_code: int | None = None
    restart_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    ip: str = ""  # address on its first network, "" when it has none
    health: str = ""  # "" (no health check) | initializing | healthy | unhealthy | reinitializing
    health_reason: str = ""  # why it is not healthy (last failed check, timeout), "" otherwise

    @property
    def managed(self) -> bool:
        """True when Corral created it (it carries the environment label)."""
        return "io.corral.environment" in self.labels


class KeyKind(enum.StrEnum):
    ADMIN = "admin"  # the bootstrap key (admin.env)
    AGENT = "agent"  # one host's agent
    ACCOUNT = "account"  # a user's account key: the user's roles in every environment
    ENVIRONMENT = "environment"  # one environment, one role (no higher than its creator's)
    SESSION = "session"  # a UI login (expires; removed at logout)
    SERVICE = "service"  # a container's service account (io.rancher.container.create_agent)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the bootstrap admin key, a user's key (account, UI session), an environment or service
    key, or an agent's per-host key (which may only speak for its host)."""

    access_key: str
    kind: KeyKind
    host_id: str | None = None
    user_id: str | None = None  # account and session keys (and environment keys: their creator)
    username: str = ""
    directory_user: bool = False  # the user comes from LDAP: their groups there carry roles too
    admin: bool = False  # the bootstrap key, or a user flagged admin
    environment_id: str | None = None  # environment and service keys: the only environment they reach
    role: str | None = None  # environment and service keys: their role there (model/access.Role)


@dataclass(frozen=True)
class RegistrationToken:
    id: str
    environment_id: str
    description: str
    created_at: float
    expires_at: float | None = None  # None: never
    max_uses: int | None = None  # None: unlimited
    uses: int = 0
    revoked_at: float | None = None
