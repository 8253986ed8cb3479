"""A sidekick's references to its unit's containers in Docker's terms: `volumes_from` and `network_mode: container:`.

Why here: Docker wants container ids (or names) where Corral's launch config names services of the unit. The
container a reference means is the one of the same environment, stack and service index on this engine (found by
Corral's labels, not by name: an upgrade may name a container `...-u1`). Resolving is done right before a create,
so a target created earlier in the same convergence round is found. A target that does not exist yet is not a
failure of the dependent container: `WaitingForSidekick` says so and the agent retries on its next round.

The ids a container was created against are recorded in its `io.corral.unit.targets` label (`service=id,...`), so
the agent sees when a target was recreated and recreates the dependent too (Docker requires it for a shared
network namespace; for `volumes_from` it makes the dependent see the new container's volumes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.model.entities import ObservedContainer
from corral.model.errors import CorralError, InvalidInput
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig
from corral.model.units import network_service, unit_references, volumes_from_service
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine

UNIT_TARGETS = "io.corral.unit.targets"
_STATE_RANK = {"running": 3, "restarting": 2, "paused": 2, "created": 1, "exited": 1}


class WaitingForSidekick(CorralError):
    """A container of the unit it needs (volumes_from, network_mode) does not exist on this host yet."""

    status = 409
    code = "waiting_for_sidekick"


@dataclass(frozen=True)
class UnitOptions:
    network_mode: str | None  # Docker's network mode when it is another container's; None: not a unit reference
    volumes_from: tuple[str, ...]  # Docker's `ID[:ro]` / `NAME[:ro]` entries
    label: str  # the UNIT_TARGETS label value, "" without unit references


def find_target(observed: Iterable[ObservedContainer], slot: ContainerSlot, service: str) -> ObservedContainer | None:
    """The container of `service` with the same environment, stack and index as `slot` (the liveliest, then the
    newest), or None."""
    matches = [
        c
        for c in observed
        if c.labels.get(labels.ENVIRONMENT) == slot.environment_id
        and c.labels.get(labels.STACK) == slot.stack
        and c.labels.get(labels.SERVICE) == service
        and c.labels.get(labels.SERVICE_INDEX) == str(slot.index)
    ]
    return max(matches, key=lambda c: (_STATE_RANK.get(c.state, 0), c.created, c.docker_id), default=None)


def recorded_targets(container: ObservedContainer) -> dict[str, str]:
    """service -> docker id from a container's UNIT_TARGETS label ({} when it has none)."""
    pairs = (item.partition("=") for item in container.labels.get(UNIT_TARGETS, "").split(",") if item)
    return {service: docker_id for service, _, docker_id in pairs}


def unit_options(launch: LaunchConfig, targets: Mapping[str, str]) -> UnitOptions:
    """Docker's options for the launch config's unit references, given the docker id of each target service."""
    needed = unit_references(launch)
    missing = [name for name in needed if name not in targets]
    if missing:
        raise InvalidInput(f"no container of sidekick {', '.join(missing)} to refer to", field="launch.volumes_from")
    volumes_from: list[str] = []
    for entry in launch.volumes_from:
        service, read_only = volumes_from_service(entry)
        mode = ":ro" if read_only else ":rw"
        if service is None:
            name = entry[len("container:") :].removesuffix(":ro")
            volumes_from.append(f"{name}{mode}")
        else:
            volumes_from.append(f"{targets[service]}{mode}")
    net = network_service(launch.network_mode)
    network_mode = f"container:{targets[net]}" if net is not None else None
    label = ",".join(f"{name}={targets[name]}" for name in needed)
    return UnitOptions(network_mode, tuple(volumes_from), label)


def resolve_targets(engine: DockerEngine, desired: DesiredContainer) -> dict[str, str]:
    """service -> docker id of each unit container `desired` refers to; raise WaitingForSidekick if one is missing."""
    needed = unit_references(desired.launch)
    if not needed:
        return {}
    observed = engine.containers(restart_counts=False)
    targets: dict[str, str] = {}
    for service in needed:
        found = find_target(observed, desired.slot, service)
        if found is None:
            raise WaitingForSidekick(f"waiting for sidekick {service} (index {desired.slot.index}) on this host")
        targets[service] = found.docker_id
    return targets
