"""Which dangerous container settings an environment allows: the pure check behind `corral up` and catalog installs.

Why a policy: a stack with `privileged: true`, `network_mode: host`, extra capabilities or a bind mount of the
Docker socket or a system path gets root on the host that runs it, and through the host every other environment's
containers there. Whoever may run stacks in an environment should not own its hosts unless the environment says
so. Each environment keeps a set of allowed settings (`SETTINGS`, or `all`); new environments allow nothing.

Only what the compose layer keeps in a `LaunchConfig` reaches Docker (compose/service.py): `privileged`,
`cap_add`, `network_mode`, bind `volumes`, `pid`, `ipc` and `devices`, each checked here. `uts`, `userns_mode`,
`security_opt`, `cgroup_parent`, `sysctls` are warned about and dropped there today (`GUARDED_COMPOSE_KEYS` and its
unit test make keeping one of them a deliberate step that starts with its rule here).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace

from corral.model.errors import InvalidInput
from corral.model.stack import LaunchConfig, ServiceSpec, StackSpec

PRIVILEGED = "privileged"
CAP_ADD = "cap_add"
HOST_NETWORK = "host_network"
HOST_PID = "host_pid"
HOST_IPC = "host_ipc"
DEVICES = "devices"
SYSTEM_MOUNTS = "system_mounts"
ALL = "all"
SETTINGS: tuple[str, ...] = (PRIVILEGED, CAP_ADD, HOST_NETWORK, HOST_PID, HOST_IPC, DEVICES, SYSTEM_MOUNTS)

# Compose keys that could hand a container its host. Those compose keeps are checked below; the others are
# dropped with a warning by compose/service.py (a unit test fails when one of them becomes supported unchecked).
CHECKED_COMPOSE_KEYS = frozenset({"privileged", "cap_add", "network_mode", "net", "volumes", "pid", "ipc", "devices"})
GUARDED_COMPOSE_KEYS = CHECKED_COMPOSE_KEYS | frozenset({
    "devices", "pid", "ipc", "uts", "userns_mode", "security_opt", "cgroup_parent", "sysctls", "device_cgroup_rules",
    "use_api_socket", "gpus", "runtime", "group_add",
})  # fmt: skip

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
# Host paths a container must not see unless `system_mounts` is allowed: the socket of the engine, the engine's and
# Corral's state, the kernel's views of the host and what the host boots and runs from. A bind mount of one of
# them, of anything below, or of a directory above one (`/`, `/var`) is a system mount.
SYSTEM_PATHS: tuple[str, ...] = (
    *DOCKER_SOCKETS,
    "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/usr", "/bin", "/sbin",
    "/lib", "/lib32", "/lib64", "/libx32",
    "/var/lib/docker", "/var/lib/containerd", "/var/lib/corral", "/var/run", "/run",
)  # fmt: skip

_WHY = {
    PRIVILEGED: "a privileged container has every capability and device of its host",
    CAP_ADD: "added capabilities widen what the container may do to its host",
    HOST_NETWORK: "the container shares its host's network stack",
    HOST_PID: "the container sees and may signal its host's processes",
    HOST_IPC: "the container shares its host's IPC namespace",
    DEVICES: "the container reaches host devices",
    SYSTEM_MOUNTS: "the container reaches the host's system files or its Docker engine",
}


@dataclass(frozen=True)
class ContainerPolicy:
    """An environment's allowed dangerous settings; `protected_paths` adds host paths (the server's data dir)."""

    allowed: frozenset[str] = frozenset()
    protected_paths: tuple[str, ...] = ()

    def allows(self, setting: str) -> bool:
        return ALL in self.allowed or setting in self.allowed

    def names(self) -> list[str]:
        """The allowed settings, in `SETTINGS` order (just `all` when everything is)."""
        return [ALL] if ALL in self.allowed else [s for s in SETTINGS if s in self.allowed]


LOCKED = ContainerPolicy()
OPEN = ContainerPolicy(frozenset({ALL}))


def parse_settings(values: Iterable[str], *, field: str = "allow") -> frozenset[str]:
    """Setting names (each may be a comma-separated list) checked against `SETTINGS` and `all`."""
    result: set[str] = set()
    for value in values:
        for part in str(value).split(","):
            name = part.strip().lower().replace("-", "_")
            if not name:
                continue
            if name not in SETTINGS and name != ALL:
                known = ", ".join((*SETTINGS, ALL))
                message = f"{field}: {part.strip()!r} is not a container setting (known: {known})"
                raise InvalidInput(message, field=field)
            result.add(name)
    return frozenset({ALL}) if ALL in result else frozenset(result)


@dataclass(frozen=True)
class Finding:
    """One dangerous field of one service: which setting governs it, the compose field and its value."""

    service: str
    setting: str
    field: str
    value: str

    def describe(self) -> str:
        return f'service "{self.service}": {self.field}: {self.value}'

    def refusal(self, environment: str) -> str:
        return (
            f'{self.describe()} is not allowed in environment "{environment}" '
            f"(allow it with: corral env update {environment} --allow {self.setting})"
        )

    def warning(self, environment: str) -> str:
        return (
            f'{self.describe()} is allowed by setting {self.setting} of environment "{environment}": '
            f"{_WHY[self.setting]}"
        )


def normalise_path(path: str) -> str:
    """An absolute host path without `.`, `..`, repeated or trailing slashes (lexically; links are the host's)."""
    text = posixpath.normpath("/" + path.strip())
    return "/" + text.lstrip("/")


def is_system_path(path: str, extra: Iterable[str] = ()) -> bool:
    """A protected path, a path below one, or a directory above one (mounting `/var` shows `/var/lib/docker`)."""
    source = normalise_path(path)
    for protected in (*SYSTEM_PATHS, *(normalise_path(p) for p in extra)):
        if source == protected or _below(source, protected) or _below(protected, source):
            return True
    return False


def _below(path: str, parent: str) -> bool:
    return parent == "/" or path.startswith(parent + "/")


def launch_findings(service: str, launch: LaunchConfig, protected_paths: Iterable[str] = ()) -> list[Finding]:
    found: list[Finding] = []
    if launch.privileged:
        found.append(Finding(service, PRIVILEGED, "privileged", "true"))
    if launch.cap_add:
        found.append(Finding(service, CAP_ADD, "cap_add", ", ".join(launch.cap_add)))
    if launch.network_mode == "host":
        found.append(Finding(service, HOST_NETWORK, "network_mode", "host"))
    if launch.pid == "host":
        found.append(Finding(service, HOST_PID, "pid", "host"))
    if launch.ipc == "host":
        found.append(Finding(service, HOST_IPC, "ipc", "host"))
    if launch.devices:
        found.append(Finding(service, DEVICES, "devices", ", ".join(d.split(":")[0] for d in launch.devices)))
    extra = tuple(protected_paths)
    for volume in launch.volumes:
        if volume.kind == "bind" and is_system_path(volume.source, extra):
            what = "the Docker socket" if normalise_path(volume.source) in DOCKER_SOCKETS else "a system path"
            found.append(Finding(service, SYSTEM_MOUNTS, "volumes", f"{volume.source} ({what})"))
    return found


def service_findings(service: ServiceSpec, protected_paths: Iterable[str] = ()) -> list[Finding]:
    return launch_findings(service.name, service.launch, protected_paths)


def findings(spec: StackSpec, protected_paths: Iterable[str] = ()) -> list[Finding]:
    """Every dangerous field of the stack, whatever the policy, in service order."""
    extra = tuple(protected_paths)
    return [f for service in spec.services for f in service_findings(service, extra)]


def violations(spec: StackSpec, policy: ContainerPolicy) -> list[Finding]:
    """The dangerous fields the policy does not allow (all of them, not only the first)."""
    return [f for f in findings(spec, policy.protected_paths) if not policy.allows(f.setting)]


def allowed_findings(spec: StackSpec, policy: ContainerPolicy) -> list[Finding]:
    """The dangerous fields the policy allows: shown as warnings."""
    return [f for f in findings(spec, policy.protected_paths) if policy.allows(f.setting)]


class PolicyRefused(InvalidInput):
    """A stack asks for dangerous settings its environment does not allow; every violation is listed."""

    code = "policy"

    def __init__(self, environment: str, found: list[Finding]) -> None:
        self.violations = [f.refusal(environment) for f in found]
        count = f"{len(found)} settings are" if len(found) > 1 else "a setting is"
        super().__init__(f"{count} not allowed: " + "; ".join(self.violations), field="policy")
        self.findings = found

    def to_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().to_dict(), "violations": self.violations}


def enforce(spec: StackSpec, policy: ContainerPolicy, environment: str) -> StackSpec:
    """The stack with a warning per allowed dangerous field; `PolicyRefused` listing every one it does not allow."""
    refused = violations(spec, policy)
    if refused:
        raise PolicyRefused(environment, refused)
    notes = tuple(f.warning(environment) for f in allowed_findings(spec, policy))
    return replace(spec, warnings=spec.warnings + notes) if notes else spec
