"""Stacks, services and the containers Corral wants: what the compose pipeline produces and the orchestrator reads.

Why frozen and plain: `compose/` builds a `StackSpec` from files, `orchestrator/` decides from it without I/O, the
store persists it as JSON (`to_dict` / `from_dict`), and the agent creates containers from a `LaunchConfig`. The
config hash of a launch config is the truth about whether a running container is still what was asked for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from corral.model.files import FileMount
from corral.model.health import DockerHealthcheck, HealthCheck

RestartPolicy = Literal["no", "always", "on-failure", "unless-stopped"]
VolumeKind = Literal["bind", "volume", "anonymous"]
# Rancher's volume scopes: "" (the stack's, `<stack>_<key>`, or the `name:` given), "container" (`per_container`:
# one volume per container index, `<name>_<index>`) and "environment" (`external`: it must exist, never created)
VolumeScope = Literal["", "container", "environment"]
NetworkMode = str  # "managed" (default: the environment's overlay), "host", "bridge", "none", "container:NAME"
# The hidden stack of an environment that holds its standalone containers (`corral run`, model/standalone.py): one
# service of scale 1 per container. The underscore keeps it out of every user's stack names (model/names.py).
STANDALONE_STACK = "corral_standalone"


@dataclass(frozen=True)
class PortSpec:
    """A published (host_port set) or exposed-only port of a container."""

    container_port: int
    host_port: int | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = ""


@dataclass(frozen=True)
class VolumeSpec:
    kind: VolumeKind
    target: str
    source: str = ""  # host path for bind, volume name for volume, empty for anonymous
    read_only: bool = False
    scope: VolumeScope = ""  # named volumes only

    def docker_source(self, index: int) -> str:
        """The Docker volume (or host path) container index `index` mounts."""
        return f"{self.source}_{index}" if self.scope == "container" else self.source


@dataclass(frozen=True)
class LaunchConfig:
    """Everything a container is created from. Two containers with equal launch configs are interchangeable."""

    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()  # sorted by key; env_file contents already merged in
    labels: tuple[tuple[str, str], ...] = ()  # sorted by key; user labels only (Corral adds io.corral.*)
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    restart: RestartPolicy = "no"
    stop_grace_seconds: float | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    mem_limit_bytes: int | None = None
    cpus: float | None = None
    tty: bool = False
    stdin_open: bool = False
    network_mode: NetworkMode = "managed"
    links: tuple[str, ...] = ()  # "service" or "service:alias": names its containers resolve (agent/dns_records.py)
    external_links: tuple[str, ...] = ()  # "stack/service" or "stack/service:alias": DNS aliases (agent/dns.py)
    # "SERVICE[:ro|:rw]" (a service of the same deployment unit) or "container:NAME[:ro|:rw]" (any container)
    volumes_from: tuple[str, ...] = ()
    healthcheck: DockerHealthcheck | None = None  # compose `healthcheck`: Docker runs its command (model/health.py)
    # Engine options Compose passes through to Docker as they are
    init: bool = False
    read_only: bool = False
    shm_size_bytes: int | None = None
    stop_signal: str = ""
    extra_hosts: tuple[str, ...] = ()  # "HOST:IP"
    tmpfs: tuple[str, ...] = ()  # "/path[:options]"
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard), sorted by name
    pid: str = ""  # "" or "host" (compose/host_access.py)
    ipc: str = ""  # "", "host", "private", "shareable" or "none"
    devices: tuple[str, ...] = ()  # "HOST:CONTAINER:PERMISSIONS"
    files: tuple[FileMount, ...] = ()  # secrets, configs and uploaded bind files, mounted read-only (model/files.py)
    # Runs to its end once, as `start_once` labels it: a service others wait for with depends_on condition
    # service_completed_successfully (Compose does not restart it; Cattle would)
    run_once: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in _OMIT_WHEN_DEFAULT:  # fields added later: existing config hashes stay what they were
            if data.get(name) == _LAUNCH_DEFAULTS[name]:
                del data[name]
        for volume in data["volumes"]:
            if not volume["scope"]:
                del volume["scope"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchConfig:
        values = dict(data)
        for key in ("command", "entrypoint"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        for key in ("environment", "labels"):
            values[key] = tuple((str(k), str(v)) for k, v in values.get(key, ()))
        for key in (
            "expose",
            "cap_add",
            "cap_drop",
            "links",
            "external_links",
            "volumes_from",
            "extra_hosts",
            "tmpfs",
            "devices",
        ):
            values[key] = tuple(values.get(key, ()))
        values["ulimits"] = tuple((str(n), int(soft), int(hard)) for n, soft, hard in values.get("ulimits", ()))
        values["ports"] = tuple(PortSpec(**p) for p in values.get("ports", ()))
        values["volumes"] = tuple(VolumeSpec(**v) for v in values.get("volumes", ()))
        if values.get("healthcheck") is not None:
            values["healthcheck"] = DockerHealthcheck.from_dict(values["healthcheck"])
        values["files"] = tuple(FileMount.from_dict(f) for f in values.get("files", ()))
        return cls(**values)

    def config_hash(self) -> str:
        """A stable digest of the launch config (canonical JSON), stored as the `io.corral.config-hash` label; made
        once per config (it is frozen; views and passes ask for it for every container)."""
        made: str | None = self.__dict__.get("_config_hash")
        if made is None:
            canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            made = hashlib.sha256(canonical.encode()).hexdigest()[:32]
            object.__setattr__(self, "_config_hash", made)
        return made

    def published_ports(self) -> frozenset[tuple[int, str]]:
        """Made once per config, as `config_hash`: each pass asks for it for every slot."""
        made: frozenset[tuple[int, str]] | None = self.__dict__.get("_published_ports")
        if made is None:
            made = frozenset((p.host_port, p.protocol) for p in self.ports if p.host_port is not None)
            object.__setattr__(self, "_published_ports", made)
        return made


# LaunchConfig fields that `to_dict` leaves out while they hold their default value (see the comment there).
_OMIT_WHEN_DEFAULT: tuple[str, ...] = (
    "volumes_from", "healthcheck", "external_links",
    "init", "read_only", "shm_size_bytes", "stop_signal", "extra_hosts", "tmpfs", "ulimits",
    "pid", "ipc", "devices", "files", "run_once",
)  # fmt: skip
_LAUNCH_DEFAULTS: dict[str, Any] = {
    f.name: (f.default if f.default is not dataclasses.MISSING else None) for f in dataclasses.fields(LaunchConfig)
}


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    launch: LaunchConfig
    scale: int = 1
    depends_on: tuple[str, ...] = ()
    # depends_on entries whose condition is not service_started: (service, "service_healthy" or
    # "service_completed_successfully"), sorted; the orchestrator waits for it (orchestrator/dependencies.py)
    depends_conditions: tuple[tuple[str, str], ...] = ()
    # compose `networks:` as network names (compose/networks.py); () on the environment's flat network
    networks: tuple[str, ...] = ()
    network_aliases: tuple[tuple[str, str], ...] = ()  # (network, alias): DNS names on that network
    internal: bool = False  # on `internal: true` networks only: its containers reach nothing outside the overlay
    start_on_create: bool = True
    # From rancher-compose.yml: health checks (agent/health.py), upgrades, retain_ip and metadata (agent/metadata.py).
    health_check: dict[str, Any] | None = None
    upgrade_strategy: dict[str, Any] | None = None
    retain_ip: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    # Scheduler reservations (compose `mem_reservation`, `deploy.resources.reservations`, `milli_cpu_reservation`):
    # a host takes a container only while the reservations of its containers fit its memory and CPUs.
    mem_reservation_bytes: int | None = None
    cpu_reservation: float | None = None
    # Sidekicks (`io.rancher.sidekicks` on the primary): one deployment unit, same host and index, the primary's scale.
    sidekicks: tuple[str, ...] = ()  # on a primary: its sidekick services
    sidekick_of: str | None = None  # on a sidekick: its primary service
    # A load balancer service's rules (model/lb.py `lb_config_to_dict`), None for every other service.
    lb_config: dict[str, Any] | None = None
    # An external service or an alias (model/virtual.py `Virtual.to_dict`): no containers; None for every other.
    virtual: dict[str, Any] | None = None
    # A standalone container's host id (model/standalone.py): placed there only, never moved (None: any host)
    pinned_host: str | None = None

    def health(self) -> HealthCheck | None:
        """The typed health check (`health_check` holds `HealthCheck.to_dict()`, see model/health.py)."""
        return HealthCheck.from_dict(self.health_check) if self.health_check else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["launch"] = self.launch.to_dict()
        if not self.sidekicks:  # stored specs of services without sidekicks stay as they were
            del data["sidekicks"]
        if self.sidekick_of is None:
            del data["sidekick_of"]
        if self.lb_config is None:
            del data["lb_config"]
        if not self.depends_conditions:
            del data["depends_conditions"]
        if not self.networks:
            del data["networks"]
        if not self.network_aliases:
            del data["network_aliases"]
        if not self.internal:
            del data["internal"]
        if self.virtual is None:
            del data["virtual"]
        if self.pinned_host is None:
            del data["pinned_host"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceSpec:
        values = dict(data)
        values["launch"] = LaunchConfig.from_dict(values["launch"])
        values["depends_on"] = tuple(values.get("depends_on", ()))
        values["sidekicks"] = tuple(values.get("sidekicks", ()))
        values["networks"] = tuple(values.get("networks", ()))
        values["network_aliases"] = tuple((str(n), str(a)) for n, a in values.get("network_aliases", ()))
        values["depends_conditions"] = tuple((str(n), str(c)) for n, c in values.get("depends_conditions", ()))
        return cls(**values)


@dataclass(frozen=True)
class StackSpec:
    name: str
    services: tuple[ServiceSpec, ...]
    warnings: tuple[str, ...] = ()  # what the files asked that Corral reads with a guessed meaning or ignores

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "services": [s.to_dict() for s in self.services],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackSpec:
        return cls(
            name=data["name"],
            services=tuple(ServiceSpec.from_dict(s) for s in data["services"]),
            warnings=tuple(data.get("warnings", ())),
        )


@dataclass(frozen=True)
class ContainerSlot:
    """One container Corral wants: service index `index` of a service, assigned to a host.

    `id` is Corral's own container id (label `io.corral.container`), stable across agent restarts; the docker id
    of the running copy comes from the agent's reports.
    """

    id: str
    environment_id: str
    stack: str
    service: str
    index: int
    host_id: str
    config_hash: str
    generation: int = 0  # > 0 for a container started by a rolling upgrade beside its retired predecessor

    @property
    def name(self) -> str:
        if self.stack == STANDALONE_STACK:  # `corral run --name web` is the engine's `web`, as `docker run` names it
            return self.service
        base = f"{self.stack}-{self.service}-{self.index}"
        return f"{base}-u{self.generation}" if self.generation else base


@dataclass(frozen=True)
class DesiredContainer:
    """What the server tells an agent about one container it must have (the `desired` message carries a list).

    Level-triggered semantics for the agent:
    - no container labelled `io.corral.container=slot.id` → create it (and start it if `running`);
    - one whose `io.corral.config-hash` differs from `slot.config_hash` → remove it and create it anew;
    - `running` false → stop it if it runs; `running` true and never started → start it;
    - `running` true, exited, and its last start is older than `start_requested_at` → start it (an explicit
      `corral start`/`restart`); otherwise an exited container is started again by the agent (with a backoff)
      when its restart policy is "no" and it is not `start_once`, else Docker's own restart policy decides;
    - Corral-labelled containers of this environment that no desired entry names → remove them.
    """

    slot: ContainerSlot
    launch: LaunchConfig
    running: bool = True
    start_requested_at: float = 0.0
    health_check: HealthCheck | None = None  # its service's check: the agent probes it (agent/health.py)
    ip: str = ""  # its address on the managed overlay (model/network.py); "" when not on it or not assigned yet
    # random host ports the server picked for `ports: ["80"]` entries (orchestrator/host_ports.py):
    # (container port, protocol, host port)
    host_ports: tuple[tuple[int, str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {
            "slot": asdict(self.slot),
            "launch": self.launch.to_dict(),
            "running": self.running,
            "start_requested_at": self.start_requested_at,
        }
        if self.health_check is not None:
            data["health_check"] = self.health_check.to_dict()
        if self.ip:
            data["ip"] = self.ip
        if self.host_ports:
            data["host_ports"] = [list(p) for p in self.host_ports]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesiredContainer:
        return cls(
            slot=ContainerSlot(**data["slot"]),
            launch=LaunchConfig.from_dict(data["launch"]),
            running=bool(data.get("running", True)),
            start_requested_at=float(data.get("start_requested_at", 0.0)),
            health_check=HealthCheck.from_dict(data["health_check"]) if data.get("health_check") else None,
            ip=str(data.get("ip") or ""),
            host_ports=tuple((int(c), str(p), int(h)) for c, p, h in data.get("host_ports") or ()),
        )


@dataclass(frozen=True)
class Stack:
    id: str
    environment_id: str
    name: str
    warnings: tuple[str, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0
    # where it came from when installed from a catalog: {catalog, template, version, answers}; {} otherwise
    catalog: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    id: str
    stack_id: str
    environment_id: str
    stack: str
    name: str
    spec: ServiceSpec
    scale: int
    position: int = 0
    reason: str = ""  # why some of its containers cannot be placed, "" when all are placed
    state: str = "active"  # the stored state, a ServiceState value (model/service_state.py)
    state_since: float = 0.0
    # the upgrade or restart in progress (strategy, previous spec, the restart's progress under "restart", ...)
    upgrade: dict[str, Any] = field(default_factory=dict)
    # when a user's command last changed it (spec, scale, upgrade, rollback, restart): a plan made from this service
    # is stored only while it is still this one (store/plan_writes.py)
    updated_at: float = 0.0


@dataclass(frozen=True)
class SlotRecord:
    """A stored slot with what the server tracks about it."""

    slot: ContainerSlot
    stack_id: str
    service_id: str
    running: bool = True
    start_requested_at: float = 0.0
    reason: str = ""  # from the agent: why it cannot be created or started
    created_at: float = 0.0
    retired: bool = False  # an old container of a rolling upgrade, kept (stopped) until confirm or rollback
    updated_at: float = 0.0
    ip: str = ""  # its address on the managed overlay (orchestrator/ipam.py), "" when none
    host_ports: tuple[tuple[int, str, int], ...] = ()  # (container port, protocol, host port) picked by the server


@dataclass(frozen=True)
class LeftoverRecord:
    """A removed slot as kept until its container is observed gone (orchestrator/occupancy.py)."""

    slot_id: str
    environment_id: str
    stack: str
    service: str
    index: int
    host_id: str
    name: str
    created_at: float
    ip: str = ""
