"""Volumes as agents report them and as the API shows them (issue 17 item 4): the wire form, the labels Corral puts
on the volumes it creates, and a volume's state across the hosts that hold it.

Why pure and here: the agent writes the report, the server parses it, the views and the scheduler read it; one
definition keeps them equal, and the state rule (active / inactive / detached / removing) is decided in one place.
A named volume of a Docker engine exists per host: "the volume `web_data`" of an environment is every host's copy
of that name, so a view groups the hosts' reports by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.model.errors import InvalidInput

# Labels on the volumes Corral creates (agent/runtime): which environment and stack own them, and the scope
ENVIRONMENT_LABEL = "io.corral.environment"
STACK_LABEL = "io.corral.stack"
SCOPE_LABEL = "io.corral.volume.scope"  # "stack" | "container" | "environment"
SCOPES = ("stack", "container", "environment")
STATES = ("active", "inactive", "detached", "removing")

MAX_VOLUMES = 10_000
MAX_NAME = 255
MAX_LABELS = 64
MAX_USERS = 1_000
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}")
DRIVER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.:/-]{0,127}")


@dataclass(frozen=True)
class ObservedVolume:
    """One volume of one host's engine, as its agent saw it."""

    name: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()  # names of the containers (any state) that mount it

    @property
    def scope(self) -> str:
        """Rancher's scope: the label Corral set, or `environment` for a volume made outside Corral (what a
        compose `external: true` names)."""
        value = self.labels.get(SCOPE_LABEL, "")
        return value if value in SCOPES else "environment"


def volume_to_wire(volume: ObservedVolume) -> dict[str, Any]:
    return {
        "name": volume.name,
        "driver": volume.driver,
        "labels": dict(volume.labels),
        "containers": list(volume.containers),
    }


def volumes_from_wire(data: object) -> tuple[ObservedVolume, ...]:
    """An agent's `volumes` report, bounds-checked; sorted by name. InvalidInput names the bad field."""
    if not isinstance(data, list):
        raise InvalidInput("volumes must be a list of volume objects", field="volumes")
    if len(data) > MAX_VOLUMES:
        raise InvalidInput(f"volumes lists more than {MAX_VOLUMES} volumes", field="volumes")
    found: dict[str, ObservedVolume] = {}
    for i, item in enumerate(data):
        where = f"volumes[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object", field=where)
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise InvalidInput(f"{where}.name must be a string of 1 to {MAX_NAME} characters", field=f"{where}.name")
        driver = item.get("driver", "local")
        if not isinstance(driver, str) or len(driver) > MAX_NAME:
            raise InvalidInput(f"{where}.driver must be a string", field=f"{where}.driver")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
            raise InvalidInput(f"{where}.labels must be an object of at most {MAX_LABELS} labels", field=where)
        users = item.get("containers") or []
        if not isinstance(users, list) or len(users) > MAX_USERS or not all(isinstance(u, str) for u in users):
            raise InvalidInput(f"{where}.containers must be a list of container names", field=f"{where}.containers")
        found[name] = ObservedVolume(
            name=name,
            driver=driver or "local",
            labels={str(k)[:MAX_NAME]: str(v)[:MAX_NAME] for k, v in labels.items()},
            containers=tuple(sorted({u.lstrip("/")[:MAX_NAME] for u in users})),
        )
    return tuple(found[name] for name in sorted(found))


@dataclass(frozen=True)
class HostVolumes:
    """What the view needs of one host: who it is, whether it is usable, and its engine's volumes."""

    host_id: str
    host_name: str
    usable: bool  # active and its agent connected: its report is current
    volumes: tuple[ObservedVolume, ...]


@dataclass(frozen=True)
class VolumeHolding:
    host_id: str
    host_name: str
    containers: tuple[str, ...]
    usable: bool


@dataclass(frozen=True)
class Volume:
    """An environment's volume: one name, on every host whose engine holds it."""

    name: str
    driver: str
    scope: str
    stack: str
    labels: dict[str, str]
    holdings: tuple[VolumeHolding, ...]
    state: str

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(sorted({c for h in self.holdings for c in h.containers}))

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "driver": self.driver,
            "scope": self.scope,
            "stack": self.stack,
            "state": self.state,
            "labels": dict(self.labels),
            "containers": list(self.containers),
            "hosts": [
                {"id": h.host_id, "name": h.host_name, "containers": list(h.containers), "usable": h.usable}
                for h in self.holdings
            ],
        }


def volume_state(holdings: Iterable[VolumeHolding], removing: bool) -> str:
    """`removing` while a removal runs; `active` when a container on a usable host mounts it; `inactive` when a
    usable host holds it unused; `detached` when only hosts that do not answer (or do not run) hold it."""
    if removing:
        return "removing"
    usable = [h for h in holdings if h.usable]
    if any(h.containers for h in usable):
        return "active"
    return "inactive" if usable else "detached"


def environment_volumes(hosts: Iterable[HostVolumes], removing: Iterable[str] = ()) -> tuple[Volume, ...]:
    """Group the hosts' reports by volume name, sorted by name (each host's holding sorted by host name)."""
    being_removed = set(removing)
    grouped: dict[str, list[tuple[HostVolumes, ObservedVolume]]] = {}
    for host in hosts:
        for volume in host.volumes:
            grouped.setdefault(volume.name, []).append((host, volume))
    result = []
    for name in sorted(grouped):
        pairs = sorted(grouped[name], key=lambda p: (p[0].host_name, p[0].host_id))
        first = next((v for _, v in pairs if SCOPE_LABEL in v.labels), pairs[0][1])
        holdings = tuple(VolumeHolding(h.host_id, h.host_name, v.containers, h.usable) for h, v in pairs)
        result.append(
            Volume(
                name=name,
                driver=first.driver,
                scope=first.scope,
                stack=first.labels.get(STACK_LABEL, ""),
                labels=dict(first.labels),
                holdings=holdings,
                state=volume_state(holdings, name in being_removed),
            )
        )
    return tuple(result)


def validate_volume_name(name: object, field_name: str = "name") -> str:
    if not isinstance(name, str) or not VOLUME_NAME.fullmatch(name):
        raise InvalidInput(
            f"{field_name} must be a volume name: 2 to 255 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
            field=field_name,
        )
    return name


def validate_driver_options(options: Mapping[str, object]) -> dict[str, str]:
    if len(options) > MAX_LABELS:
        raise InvalidInput(f"driver_opts has more than {MAX_LABELS} entries", field="driver_opts")
    result: dict[str, str] = {}
    for key, value in options.items():
        if not key or len(key) > MAX_NAME or not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidInput(f"driver_opts[{key!r}] must be a string value", field=f"driver_opts.{key}")
        result[key] = str(value)
    return result
