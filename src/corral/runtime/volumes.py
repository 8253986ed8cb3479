"""Named volumes on one Docker engine: list them with the containers that mount them, create, remove, and create a
container's stack volumes with Corral's labels before the container (issue 17 item 4).

Why labels at creation: Docker creates a volume a bind names on the fly, with no labels; created here first, a
stack's volume carries its environment, stack and scope (model/volumes.py), so the server can tell whose it is
(`corral volume ls`), remove it with its stack and keep its containers on the host that holds its data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import docker
import docker.errors

from corral.model.errors import Conflict, NotFound
from corral.model.stack import DesiredContainer
from corral.model.volumes import ENVIRONMENT_LABEL, SCOPE_LABEL, STACK_LABEL, ObservedVolume
from corral.runtime.docker_engine import DockerEngine


def list_volumes(engine: DockerEngine) -> tuple[ObservedVolume, ...]:
    """Every volume of the engine, each with the names of the containers (any state) that mount it."""

    def read(client: docker.DockerClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        volumes = client.api.volumes().get("Volumes") or []
        return volumes, client.api.containers(all=True)

    volumes, containers = engine.call("list volumes", read)
    users: dict[str, set[str]] = {}
    for row in containers:
        name = str((row.get("Names") or [""])[0]).lstrip("/")
        for mount in row.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(str(mount["Name"]), set()).add(name)
    found = [
        ObservedVolume(
            name=str(v["Name"]),
            driver=str(v.get("Driver") or "local"),
            labels={str(k): str(val) for k, val in (v.get("Labels") or {}).items()},
            containers=tuple(sorted(users.get(str(v["Name"]), ()))),
        )
        for v in volumes
        if v.get("Name")
    ]
    return tuple(sorted(found, key=lambda v: v.name))


def create_volume(
    engine: DockerEngine, name: str, *, driver: str, driver_opts: Mapping[str, str], labels: Mapping[str, str]
) -> None:
    """Create `name`; an existing volume of that name is kept as it is (Docker's own answer to a second create)."""
    engine.call(
        f"create volume {name}",
        lambda client: client.api.create_volume(
            name, driver=driver or "local", driver_opts=dict(driver_opts) or None, labels=dict(labels) or None
        ),
    )


def remove_volume(engine: DockerEngine, name: str) -> None:
    """Remove `name`; Conflict naming the containers that mount it, NotFound when the engine has no such volume."""
    users = next((v.containers for v in list_volumes(engine) if v.name == name), None)
    if users is None:
        raise NotFound(f"volume {name!r} does not exist on this host", field="name")
    if users:
        raise Conflict(f"volume {name!r} is in use by {', '.join(users)}")

    def remove(client: docker.DockerClient) -> None:
        try:
            client.api.remove_volume(name)
        except docker.errors.NotFound:
            return  # gone meanwhile: what was asked
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise Conflict(f"volume {name!r} is in use: {exc.explanation or exc}") from exc
            raise

    engine.call(f"remove volume {name}", remove)


def stack_volume_labels(desired: DesiredContainer, scope: str) -> dict[str, str]:
    return {ENVIRONMENT_LABEL: desired.slot.environment_id, STACK_LABEL: desired.slot.stack, SCOPE_LABEL: scope}


def ensure_stack_volumes(engine: DockerEngine, desired: DesiredContainer) -> None:
    """Create the container's stack and per-container volumes that do not exist yet, labelled as Corral's (an
    environment volume must exist already: runtime/containers.py waits for it)."""
    wanted = {
        volume.docker_source(desired.slot.index): "container" if volume.scope == "container" else "stack"
        for volume in desired.launch.volumes
        if volume.kind == "volume" and volume.source and volume.scope != "environment"
    }
    if not wanted:
        return

    def existing(client: docker.DockerClient) -> set[str]:
        return {str(v.get("Name")) for v in client.api.volumes().get("Volumes") or []}

    present = engine.call("list volumes", existing)
    for name, scope in sorted(wanted.items()):
        if name not in present:
            create_volume(engine, name, driver="local", driver_opts={}, labels=stack_volume_labels(desired, scope))
