"""References between the containers of one deployment unit (a primary and its sidekicks), read from a launch config.

Why in the model: compose checks them (they must stay inside a unit), the agent orders a unit's containers by them
(targets first) and the runtime turns them into Docker's `volumes_from` / `network_mode: container:`; all three
must read `volumes_from` entries and `service:` network modes the same way.

Forms (normalised by compose): `volumes_from` entries are `SERVICE`, `SERVICE:ro`, `container:NAME` or
`container:NAME:ro`; a network mode `service:SERVICE` names a service of the unit, `container:NAME` any container.
"""

from __future__ import annotations

from corral.model.stack import LaunchConfig


def volumes_from_service(entry: str) -> tuple[str | None, bool]:
    """(the service named, or None for a `container:` entry; read-only) of one normalised `volumes_from` entry."""
    if entry.startswith("container:"):
        return None, entry.endswith(":ro")
    name, _, mode = entry.partition(":")
    return name, mode == "ro"


def network_service(network_mode: str) -> str | None:
    """The service a `service:NAME` network mode names, else None."""
    return network_mode[len("service:") :] if network_mode.startswith("service:") else None


def unit_references(launch: LaunchConfig) -> tuple[str, ...]:
    """The services of its unit a container needs before it can be created: its `volumes_from` services, then its
    `service:` network mode, once each."""
    names = [n for n, _ in map(volumes_from_service, launch.volumes_from) if n is not None]
    net = network_service(launch.network_mode)
    if net is not None:
        names.append(net)
    return tuple(dict.fromkeys(names))
