"""Create, start, stop and remove the containers Corral wants, on one Docker engine.

Why its own module: turning a `DesiredContainer` into Docker's create arguments is pure and tested without an
engine (`create_arguments`); the few calls that act translate Docker's answers into Corral errors whose message
is fit to show a user as the container's reason ("image X is not present on this host and cannot be pulled: ...",
"the name N is taken by container ID, which Corral did not create"). A missing image is pulled before a create
(and every time when the launch labels say `pull_image: always`); a failed pull is the container's reason.

Errors: `ImageMissing` (a NotFound), `Conflict` (a name held by a container Corral may not remove),
`EngineRejected` (the engine answered and refused: bad mount, port already allocated, ...), `InvalidInput`
(a launch config Docker cannot express), `Unavailable` (the engine is not reachable).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from corral.model.errors import Conflict, CorralError, InvalidInput, NotFound
from corral.model.health import DockerHealthcheck
from corral.model.lb import runs_haproxy
from corral.model.network import DNS_DOMAIN, DOCKER_NETWORK, SERVICES_ADDRESS
from corral.model.registries import RegistryCredential, registry_of
from corral.model.stack import DesiredContainer, LaunchConfig
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine, _parse_time
from corral.runtime.units import UNIT_TARGETS, resolve_targets, unit_options
from corral.runtime.volumes import ensure_stack_volumes

log = logging.getLogger(__name__)

MANAGED_NETWORK_MODE = "managed"
MANAGED_FALLBACK = "bridge"  # a managed container without an overlay address (the converger waits for one instead)
DOCKER_DEFAULT_STOP_SECONDS = 10
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})


class EngineRejected(CorralError):
    """The engine answered but refused what was asked; the message carries its explanation."""

    status = 422
    code = "engine_rejected"


class ImageMissing(NotFound):
    """The image is not in the engine's local store and could not be pulled."""


class _NameTaken(Conflict):
    pass


@dataclass(frozen=True)
class CreateArguments:
    """Keyword arguments for the SDK's low-level `create_container` and `create_host_config`."""

    config: dict[str, Any]
    host_config: dict[str, Any]
    endpoint: dict[str, str] | None = None  # {"network", "ipv4_address"}: attached to the managed overlay


def on_overlay(desired: DesiredContainer) -> bool:
    """Whether the container belongs on the managed overlay (network_mode managed, not joined to a sidekick)."""
    return desired.launch.network_mode in ("", MANAGED_NETWORK_MODE)


def publishes_through_agent(desired: DesiredContainer) -> bool:
    """An LB container on the managed overlay: its fixed host ports are not Docker's to bind, the agent forwards
    them to the one LB container of the host that should take new connections (network/lb_ports.py)."""
    launch = desired.launch
    return bool(desired.ip) and on_overlay(desired) and runs_haproxy(launch.image, dict(launch.labels))


def host_ports_label(host_ports: Iterable[tuple[int, str, int]]) -> str:
    """The `io.corral.host-ports` label of a container created with these random host ports ("" for none)."""
    return ",".join(f"{c}/{p}:{h}" for c, p, h in host_ports)


def short(docker_id: str) -> str:
    return docker_id[:12]


def container_labels(desired: DesiredContainer) -> dict[str, str]:
    """The user's labels plus Corral's own (which win: a user label cannot fake a Corral one)."""
    slot = desired.slot
    result = dict(desired.launch.labels)
    result.update(
        {
            labels.ENVIRONMENT: slot.environment_id,
            labels.STACK: slot.stack,
            labels.SERVICE: slot.service,
            labels.CONTAINER: slot.id,
            labels.SERVICE_INDEX: str(slot.index),
            labels.CONFIG_HASH: slot.config_hash,
            labels.RANCHER_STACK_NAME: slot.stack,
            labels.RANCHER_STACK_SERVICE_NAME: f"{slot.stack}/{slot.service}",
        }
    )
    return result


def docker_network_mode(mode: str) -> str:
    return MANAGED_FALLBACK if mode in ("", MANAGED_NETWORK_MODE) else mode


def expose_ports(entries: Iterable[str]) -> list[tuple[int, str]]:
    """Compose `expose` entries ("80", "53/udp", "8000-8002/tcp") as (port, protocol) pairs, in order, once each."""
    result: list[tuple[int, str]] = []
    for entry in entries:
        text = str(entry).strip()
        ports, _, protocol = text.partition("/")
        protocol = protocol.lower() or "tcp"
        first, _, last = ports.partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            raise InvalidInput(f"expose entry {entry!r} is not a port or a port range", field="launch.expose") from None
        if protocol not in _PROTOCOLS or not 0 < low <= high <= 65535:
            raise InvalidInput(f"expose entry {entry!r} is not a port or a port range", field="launch.expose")
        for port in range(low, high + 1):
            if (port, protocol) not in result:
                result.append((port, protocol))
    return result


def stop_timeout(grace_seconds: float | None) -> int | None:
    """Docker takes whole seconds; a grace period is never shortened by rounding."""
    return None if grace_seconds is None else max(0, math.ceil(grace_seconds))


def docker_healthcheck_config(check: DockerHealthcheck) -> dict[str, Any]:
    """Compose's `healthcheck` in the engine's terms (durations in nanoseconds; absent: the engine's default)."""
    result: dict[str, Any] = {}
    if check.test:
        result["test"] = list(check.test)
    for key, seconds in (
        ("interval", check.interval_seconds),
        ("timeout", check.timeout_seconds),
        ("start_period", check.start_period_seconds),
    ):
        if seconds:
            result[key] = max(1_000_000, round(seconds * 1e9))  # the engine's minimum is 1 ms
    if check.retries is not None:
        result["retries"] = check.retries
    return result


def engine_host_options(launch: LaunchConfig) -> dict[str, Any]:
    """Compose's pass-through engine options (compose/engine_options.py) as docker-py host config arguments."""
    options: dict[str, Any] = {}
    if launch.init:
        options["init"] = True
    if launch.read_only:
        options["read_only"] = True
    if launch.shm_size_bytes is not None:
        options["shm_size"] = launch.shm_size_bytes
    if launch.extra_hosts:
        options["extra_hosts"] = list(launch.extra_hosts)
    if launch.tmpfs:
        options["tmpfs"] = dict((path.partition(":")[0], path.partition(":")[2]) for path in launch.tmpfs)
    if launch.ulimits:
        options["ulimits"] = [{"Name": name, "Soft": soft, "Hard": hard} for name, soft, hard in launch.ulimits]
    return options


def create_arguments(
    desired: DesiredContainer, targets: Mapping[str, str] | None = None, file_binds: Iterable[tuple[str, str]] = ()
) -> CreateArguments:
    """Everything Docker needs to create `desired` (pure). `targets`: docker ids of the unit's containers that
    its `volumes_from` / `network_mode: service:` name (runtime/units.py). `file_binds`: (host path, container
    path) of the files the agent wrote for its secrets, configs and uploads (agent/files.py), bound read-only."""
    launch: LaunchConfig = desired.launch
    unit = unit_options(launch, targets or {})
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, list[tuple[str, int]]] = {}
    through_agent = publishes_through_agent(desired)
    for port in launch.ports:
        key: tuple[int, str] = (port.container_port, port.protocol)
        if key not in exposed:
            exposed.append(key)
        if port.host_port is not None and not through_agent:
            bindings.setdefault(f"{port.container_port}/{port.protocol}", []).append((port.host_ip, port.host_port))
    random_ip: dict[tuple[int, str], str] = {
        (p.container_port, p.protocol): p.host_ip for p in launch.ports if p.host_port is None
    }
    for container_port, protocol, host_port in desired.host_ports:  # the random ones the server picked
        if (container_port, protocol) not in exposed:
            exposed.append((container_port, protocol))
        host_ip = random_ip.get((container_port, protocol), "")
        bindings.setdefault(f"{container_port}/{protocol}", []).append((host_ip, host_port))
    for pair in expose_ports(launch.expose):
        if pair not in exposed:
            exposed.append(pair)
    binds: list[str] = []
    anonymous: list[str] = []
    for volume in launch.volumes:
        if volume.kind == "bind" and not volume.source:
            raise InvalidInput(f"bind mount at {volume.target} has no host path", field="launch.volumes")
        if volume.kind == "anonymous" or not volume.source:
            anonymous.append(volume.target)
        else:
            source = volume.docker_source(desired.slot.index)
            binds.append(f"{source}:{volume.target}:{'ro' if volume.read_only else 'rw'}")
    binds += [f"{host_path}:{target}:ro" for host_path, target in file_binds]

    config: dict[str, Any] = {
        "image": launch.image,
        "name": desired.slot.name,
        "command": list(launch.command) if launch.command is not None else None,
        "entrypoint": list(launch.entrypoint) if launch.entrypoint is not None else None,
        "environment": [f"{key}={value}" for key, value in launch.environment],
        "labels": container_labels(desired) | ({UNIT_TARGETS: unit.label} if unit.label else {}),
        "ports": exposed or None,
        "volumes": anonymous or None,
        "working_dir": launch.working_dir or None,
        "user": launch.user or None,
        "hostname": launch.hostname or None,
        "stop_timeout": stop_timeout(launch.stop_grace_seconds),
        "tty": launch.tty,
        "stdin_open": launch.stdin_open,
        "detach": True,
        "use_config_proxy": False,  # the environment is exactly what was asked for
    }
    if launch.healthcheck is not None:
        config["healthcheck"] = docker_healthcheck_config(launch.healthcheck)
    if launch.stop_signal:
        config["stop_signal"] = launch.stop_signal
    if desired.host_ports:
        config["labels"][labels.HOST_PORTS] = host_ports_label(desired.host_ports)
    host_config: dict[str, Any] = {
        "network_mode": unit.network_mode or docker_network_mode(launch.network_mode),
        "volumes_from": list(unit.volumes_from) or None,
        "port_bindings": bindings or None,
        "binds": binds or None,
        "restart_policy": {"Name": launch.restart, "MaximumRetryCount": 0} if launch.restart != "no" else None,
        "cap_add": list(launch.cap_add) or None,
        "cap_drop": list(launch.cap_drop) or None,
        "privileged": launch.privileged,
        "pid_mode": launch.pid or None,
        "ipc_mode": launch.ipc or None,
        "devices": list(launch.devices) or None,
        "mem_limit": launch.mem_limit_bytes,
        "nano_cpus": round(launch.cpus * 1e9) if launch.cpus is not None else None,
        **engine_host_options(launch),
    }
    endpoint: dict[str, str] | None = None
    if desired.ip and on_overlay(desired) and not unit.network_mode:
        # Corral's IPAM chose the address (never Docker's); DNS and metadata answer on the services address.
        host_config["network_mode"] = DOCKER_NETWORK
        host_config["dns"] = [SERVICES_ADDRESS]
        host_config["dns_search"] = [f"{desired.slot.stack}.{DNS_DOMAIN}", DNS_DOMAIN]
        config["labels"][labels.OVERLAY_IP] = desired.ip
        endpoint = {"network": DOCKER_NETWORK, "ipv4_address": desired.ip}
    return CreateArguments(config=config, host_config=host_config, endpoint=endpoint)


def _explain(exc: docker.errors.APIError) -> str:
    text = exc.explanation or str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _label(name: str, docker_id: str) -> str:
    return name or short(docker_id)


# -- acting on the engine


def ensure_image(
    engine: DockerEngine,
    image: str,
    *,
    always_pull: bool = False,
    credential: RegistryCredential | None = None,
) -> None:
    """Make sure the engine has `image`: pull it when it is missing (or every time with `always_pull`).

    `credential` (the environment's entry for the image's registry, model/registries.py) authenticates the pull;
    its password goes to the engine only, never into a message. Raises `ImageMissing` when it is not there and
    cannot be pulled, `EngineRejected` when a pull that `always_pull` asked for fails (a stale local copy is not
    silently used instead).
    """
    if not always_pull and image_present(engine, image):
        return
    failure = pull_image(engine, image, credential)
    if failure:
        raise pull_error(image, failure, always_pull=always_pull)


def image_present(engine: DockerEngine, image: str) -> bool:
    """Whether the engine's local store has `image` (one quick lookup)."""

    def present(client: docker.DockerClient) -> bool:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise EngineRejected(f"image {image}: {_explain(exc)}", field="launch.image") from exc
        return True

    return engine.call(f"look up image {image}", present)


def image_identity(engine: DockerEngine, image: str) -> str:
    """The engine's id of `image` (with its registry digest when it has one, "id@digest"), "" when not present."""

    def identity(client: docker.DockerClient) -> str:
        try:
            found = client.images.get(image)
        except docker.errors.ImageNotFound:
            return ""
        except docker.errors.APIError as exc:
            raise EngineRejected(f"image {image}: {_explain(exc)}", field="launch.image") from exc
        digests = found.attrs.get("RepoDigests") or []
        digest = str(digests[0]).rpartition("@")[2] if digests else ""
        return f"{found.id}@{digest}" if digest else str(found.id)

    return engine.call(f"look up image {image}", identity)


def pull_image(engine: DockerEngine, image: str, credential: RegistryCredential | None = None) -> str:
    """Pull `image` (blocks until the engine is done); "" when it worked, else why it failed (never the password).
    Raises `Unavailable` when the engine cannot be reached."""

    def pull(client: docker.DockerClient) -> str:
        repository, tag = docker.utils.parse_repository_tag(image)
        auth = None if credential is None else {"username": credential.username, "password": credential.password}
        try:
            client.api.pull(repository, tag=tag or "latest", auth_config=auth)
        except docker.errors.APIError as exc:
            return _pull_failure(image, _explain(exc), credential)
        except docker.errors.DockerException as exc:
            return _pull_failure(image, str(exc), credential)
        return ""

    return engine.call(f"pull image {image}", pull)


def pull_error(image: str, failure: str, *, always_pull: bool) -> CorralError:
    """The container's error for a failed pull of its image."""
    if always_pull:
        return EngineRejected(f"pull_image is always, and pulling {image} failed: {failure}", field="launch.image")
    return ImageMissing(
        f"image {image} is not present on this host and cannot be pulled: {failure}", field="launch.image"
    )


_AUTH_FAILURES = ("unauthorized", "authentication required", "no basic auth credentials")


def _pull_failure(image: str, text: str, credential: RegistryCredential | None) -> str:
    """Docker's reason for a failed pull; when the registry refused the login, say so with the registry's name and
    whose credentials it refused (never the password)."""
    if credential is not None and credential.password:
        text = text.replace(credential.password, "***")  # an engine should never echo it; make sure
    if not any(marker in text.lower() for marker in _AUTH_FAILURES):
        return text
    registry = registry_of(image)
    if credential is None:
        return f"registry {registry}: authentication failed (this environment has no credentials for it): {text}"
    return f"registry {registry}: authentication failed for user {credential.username}: {text}"


def wants_image_pull(launch: LaunchConfig) -> bool:
    """The `pull_image: always` container label (Rancher's and Corral's spelling)."""
    return labels.pulls_always(launch.labels)


def _create(client: docker.DockerClient, arguments: CreateArguments) -> str:
    name = arguments.config["name"]
    try:
        host_config = client.api.create_host_config(**arguments.host_config)
        networking = None
        if arguments.endpoint is not None:
            endpoint = client.api.create_endpoint_config(ipv4_address=arguments.endpoint["ipv4_address"])
            networking = client.api.create_networking_config({arguments.endpoint["network"]: endpoint})
        created = client.api.create_container(host_config=host_config, networking_config=networking, **arguments.config)
    except docker.errors.ImageNotFound:
        image = arguments.config["image"]
        raise ImageMissing(f"image {image} is not present on this host", field="launch.image") from None
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise _NameTaken(f"the name {name} is taken: {_explain(exc)}") from exc
        raise EngineRejected(f"cannot create {name}: {_explain(exc)}") from exc
    except (docker.errors.InvalidArgument, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot create {name}: {exc}") from exc
    return str(created["Id"])


def create_container(
    engine: DockerEngine,
    desired: DesiredContainer,
    *,
    protected_slots: Collection[str] = (),
    image_ready: bool = False,
    file_binds: Iterable[tuple[str, str]] = (),
) -> str:
    """Create (not start) the container for `desired`, named `slot.name`; return its docker id.

    If the name is taken: the very container wanted (same slot and config hash) is adopted; a stale Corral copy
    of the slot, or a Corral container of the same environment whose slot is not in `protected_slots` (the slots
    still desired), is removed and the create retried; any other holder is reported as a `Conflict`.
    """
    if not image_ready:
        ensure_image(engine, desired.launch.image, always_pull=wants_image_pull(desired.launch))
    _check_external_volumes(engine, desired.launch)
    ensure_stack_volumes(engine, desired)
    arguments = create_arguments(desired, resolve_targets(engine, desired), file_binds)
    name = desired.slot.name
    for _ in range(3):
        try:
            return engine.call(f"create container {name}", lambda client: _create(client, arguments))
        except _NameTaken:
            adopted = _resolve_name_conflict(engine, desired, protected_slots)
            if adopted is not None:
                return adopted
    raise Conflict(f"the name {name} stays taken although its stale holder was removed; retrying later")


def _check_external_volumes(engine: DockerEngine, launch: LaunchConfig) -> None:
    """An environment volume (compose `external`) must exist: Docker would create an empty one instead."""
    for volume in launch.volumes:
        if volume.scope != "environment":
            continue

        def exists(client: docker.DockerClient, name: str = volume.source) -> bool:
            try:
                client.volumes.get(name)
            except docker.errors.NotFound:
                return False
            return True

        if not engine.call(f"inspect volume {volume.source}", exists):
            raise NotFound(
                f"waiting for external volume {volume.source!r}: it does not exist on this host (create it with "
                f"`docker volume create {volume.source}` there, or remove external: true to let the stack own it)"
            )


def _resolve_name_conflict(
    engine: DockerEngine, desired: DesiredContainer, protected_slots: Collection[str]
) -> str | None:
    """The docker id to adopt, or None after freeing the name; raise Conflict if the holder must stay."""
    slot = desired.slot
    holder = engine.container(slot.name)
    if holder is None:
        return None  # gone meanwhile
    holder_slot = holder.labels.get(labels.CONTAINER, "")
    if holder_slot == slot.id and holder.labels.get(labels.CONFIG_HASH) == slot.config_hash:
        return holder.docker_id
    same_environment = holder.labels.get(labels.ENVIRONMENT) == slot.environment_id
    if holder_slot == slot.id or (holder_slot and same_environment and holder_slot not in protected_slots):
        log.info(
            "removing stale container %s (%s) that holds the name %s", short(holder.docker_id), holder_slot, slot.name
        )
        remove_container(engine, holder.docker_id, name=slot.name)
        return None
    if holder_slot and not same_environment:
        raise Conflict(
            f"the name {slot.name} is taken by container {short(holder.docker_id)} of another Corral environment "
            f"({holder.labels.get(labels.ENVIRONMENT, '?')}); remove it or use another stack name"
        )
    if holder_slot:
        raise Conflict(
            f"the name {slot.name} is taken by container {short(holder.docker_id)} of slot {holder_slot}, "
            "which is desired too"
        )
    raise Conflict(
        f"the name {slot.name} is taken by container {short(holder.docker_id)}, which Corral did not create; "
        "remove or rename it"
    )


def start_container(engine: DockerEngine, docker_id: str, *, name: str = "") -> None:
    """Start a created or exited container (a running one is left as it is)."""
    what = _label(name, docker_id)

    def start(client: docker.DockerClient) -> None:
        try:
            client.api.start(docker_id)
        except docker.errors.NotFound:
            raise NotFound(f"cannot start {what}: the container is gone") from None
        except docker.errors.APIError as exc:
            raise EngineRejected(f"cannot start {what}: {_explain(exc)}") from exc

    engine.call(f"start container {what}", start)


def stop_container(engine: DockerEngine, docker_id: str, grace_seconds: float | None = None, *, name: str = "") -> None:
    """Stop with SIGTERM, then SIGKILL after the grace period (None: the container's own stop timeout).

    A container that is gone or not running is fine.
    """
    what = _label(name, docker_id)

    def stop(client: docker.DockerClient) -> None:
        try:
            timeout = stop_timeout(grace_seconds)
            if timeout is None:
                config = client.api.inspect_container(docker_id).get("Config") or {}
                own = config.get("StopTimeout")
                timeout = int(own) if isinstance(own, int) and own >= 0 else DOCKER_DEFAULT_STOP_SECONDS
            client.api.stop(docker_id, timeout=timeout)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineRejected(f"cannot stop {what}: {_explain(exc)}") from exc

    engine.call(f"stop container {what}", stop)


def remove_container(
    engine: DockerEngine, docker_id: str, grace_seconds: float | None = None, *, name: str = ""
) -> None:
    """Stop gracefully (see `stop_container`), then remove with force. A container already gone is fine.

    Volumes are kept: named ones always, anonymous ones too (a recreated container must not cost anyone data).
    """
    what = _label(name, docker_id)
    try:
        stop_container(engine, docker_id, grace_seconds, name=name)
    except EngineRejected as exc:  # e.g. a dead container: force removal may still work
        log.debug("%s; removing with force", exc.message)

    def remove(client: docker.DockerClient) -> None:
        try:
            client.api.remove_container(docker_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already in progress" in _explain(exc):
                return
            raise EngineRejected(f"cannot remove {what}: {_explain(exc)}") from exc

    engine.call(f"remove container {what}", remove)


def started_at(engine: DockerEngine, docker_id: str) -> float | None:
    """When the container last started (epoch seconds; 0.0 if never), or None if it is gone."""

    def inspect(client: docker.DockerClient) -> float | None:
        try:
            data: dict[str, Any] = client.api.inspect_container(docker_id)
        except docker.errors.NotFound:
            return None
        state = data.get("State") or {}
        return _parse_time(state.get("StartedAt"))

    return engine.call(f"inspect container {short(docker_id)}", inspect)


def container_pid(engine: DockerEngine, docker_id: str) -> int:
    """The host pid of the container's main process (0 when it is not running or gone): its /proc/PID/net tells
    which connections it holds (agent/drain.py)."""

    def inspect(client: docker.DockerClient) -> int:
        try:
            data: dict[str, Any] = client.api.inspect_container(docker_id)
        except docker.errors.NotFound:
            return 0
        state = data.get("State") or {}
        pid = state.get("Pid")
        return pid if isinstance(pid, int) and state.get("Running") else 0

    return engine.call(f"inspect container {short(docker_id)}", inspect)
