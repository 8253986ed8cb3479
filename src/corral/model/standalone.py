"""Standalone containers (`corral run`, `POST /v1/containers`): Rancher 1.6's containers outside any service.

Why a one-container service of a hidden stack rather than a container record of its own: the orchestrator, the
slots, IPAM, host ports, the agents' desired sets, states, logs, exec and stop/start already exist for services, and
keep their invariants (one container per index, nothing placed on a lost host) for this case too. What makes it
standalone: the stack `STANDALONE_STACK` (no user stack can be named so), scale 1, restart policy `no` meaning what
Docker means (not restarted: `run_once`), and `pinned_host`: the host chosen at creation, the only one it ever runs
on (orchestrator/reconciling.py never moves it; a lost host leaves it where it is, with the reason).

This module checks a run request field by field (each error names its field) and turns it into that service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from corral.model.errors import InvalidInput
from corral.model.names import validate_labels, validate_name
from corral.model.stack import STANDALONE_STACK, LaunchConfig, PortSpec, RestartPolicy, ServiceSpec

__all__ = [
    "RESTART_POLICIES",
    "STANDALONE_STACK",
    "RunRequest",
    "is_standalone",
    "parse_port",
    "service_spec",
    "validate_run",
]

RESTART_POLICIES: tuple[RestartPolicy, ...] = ("no", "always", "on-failure", "unless-stopped")
MAX_IMAGE = 255
MAX_COMMAND_ITEMS = 256
MAX_ITEM = 4096
MAX_ENTRIES = 256
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PORT = re.compile(r"^(?:(?P<host>\d{1,5}):)?(?P<container>\d{1,5})(?:/(?P<protocol>tcp|udp))?$")
# labels that would make the hidden stack's service something else than one pinned container
_RESERVED_LABEL_PREFIXES = ("io.corral.", "io.rancher.scheduler.", "io.rancher.sidekicks", "io.rancher.container.")


def is_standalone(stack: str) -> bool:
    return stack == STANDALONE_STACK


@dataclass(frozen=True)
class RunRequest:
    """A checked `corral run`: what `service_spec` turns into the hidden stack's service."""

    name: str
    image: str
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortSpec, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    restart: RestartPolicy = "no"
    host: str = ""  # the host asked for (name or id), "" for the scheduler's choice


def parse_port(value: object, *, field: str = "ports") -> PortSpec:
    """`8080:80`, `8080:80/udp` or `80` (a random host port, as `docker run -p 80`)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: each port must be a string like 8080:80", field=field)
    match = _PORT.fullmatch(value.strip())
    if match is None:
        raise InvalidInput(f"{field}: invalid port {value!r}: expected [HOST:]CONTAINER[/tcp|udp]", field=field)
    container = int(match["container"])
    host = int(match["host"]) if match["host"] is not None else None
    for number in (container, host):
        if number is not None and not 1 <= number <= 65535:
            raise InvalidInput(f"{field}: invalid port {value!r}: ports are 1-65535", field=field)
    protocol = cast("Any", match["protocol"] or "tcp")
    return PortSpec(container_port=container, host_port=host, protocol=protocol)


def _string(value: object, field: str, *, limit: int = MAX_ITEM) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if len(value) > limit or "\x00" in value:
        raise InvalidInput(f"{field} is longer than {limit} characters or holds a NUL", field=field)
    return value


def _command(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidInput(
            "command must be a list of strings (the arguments, as `docker run IMAGE CMD...`)", field="command"
        )
    if not isinstance(value, Sequence) or len(value) > MAX_COMMAND_ITEMS:
        raise InvalidInput(f"command must be a list of at most {MAX_COMMAND_ITEMS} strings", field="command")
    items = tuple(_string(item, "command") for item in value)
    return items or None


def _environment(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > MAX_ENTRIES:
        raise InvalidInput(f"env must be an object of at most {MAX_ENTRIES} names and string values", field="env")
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key) or len(key) > 256:
            raise InvalidInput(f"env: {key!r} is not a valid variable name", field="env")
        checked[key] = _string(item, f"env.{key}")
    return tuple(sorted(checked.items()))


def _ports(value: object) -> tuple[PortSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) > MAX_ENTRIES:
        raise InvalidInput(f"ports must be a list of at most {MAX_ENTRIES} strings like 8080:80", field="ports")
    ports = tuple(parse_port(item) for item in value)
    published = [(p.host_port, p.protocol) for p in ports if p.host_port is not None]
    for entry in published:
        if published.count(entry) > 1:
            raise InvalidInput(f"ports: host port {entry[0]}/{entry[1]} is published twice", field="ports")
    return ports


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    labels = validate_labels(value, field="labels")
    if len(labels) > MAX_ENTRIES:
        raise InvalidInput(f"labels: at most {MAX_ENTRIES}", field="labels")
    for key in labels:
        if key.startswith(_RESERVED_LABEL_PREFIXES):
            raise InvalidInput(
                f"labels: {key!r} is reserved (scheduling and Corral's own labels do not apply to a standalone "
                "container; choose its host with `host`)",
                field=f"labels.{key}",
            )
    return tuple(sorted(labels.items()))


def validate_run(body: Mapping[str, Any], *, default_name: str) -> RunRequest:
    """Check every field of a run request; `default_name` is used when none is given (InvalidInput naming the
    field otherwise)."""
    name = body.get("name")
    name = validate_name(name, field="name") if name not in (None, "") else default_name
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise InvalidInput("image is required (e.g. corral/busybox)", field="image")
    if len(image) > MAX_IMAGE or not _IMAGE.fullmatch(image):
        raise InvalidInput(f"image {image[:80]!r} is not a valid image reference", field="image")
    restart = body.get("restart") or "no"
    if restart not in RESTART_POLICIES:
        raise InvalidInput(
            f"restart {restart!r} is not a restart policy: use one of {', '.join(RESTART_POLICIES)}", field="restart"
        )
    host = body.get("host") or ""
    if host:
        host = _string(host, "host", limit=128)
    return RunRequest(
        name=name,
        image=image,
        command=_command(body.get("command")),
        environment=_environment(body.get("env")),
        ports=_ports(body.get("ports")),
        labels=_labels(body.get("labels")),
        restart=cast("RestartPolicy", restart),
        host=host,
    )


def service_spec(run: RunRequest, host_id: str) -> ServiceSpec:
    """The hidden stack's service for `run`, pinned to `host_id`. Restart `no` means not restarted, as in Docker
    (`run_once`: the agent leaves it exited); the other policies are Docker's own."""
    launch = LaunchConfig(
        image=run.image,
        command=run.command,
        environment=run.environment,
        labels=run.labels,
        ports=run.ports,
        restart=run.restart,
        run_once=run.restart == "no",
    )
    return ServiceSpec(name=run.name, launch=launch, scale=1, pinned_host=host_id)
