"""The Docker side of the managed overlay: the bridge network `corral-managed` on one engine.

Why its own module: the overlay's Docker network is the only network Corral creates, and its settings come from the
server (the environment's subnet, this host's slice and gateway, the MTU), so they can change under a running
engine. `wanted_network` says what the network must look like (pure), `network_differences` compares it with what
the engine reports (pure), and `ensure_network` acts: creates a missing network, recreates one with other settings
when no container uses it, and otherwise raises `Conflict` naming the differences and the containers in the way
(they are never disconnected behind the user's back).

Docker creates the bridge `corral0` for the network; network/overlay.py then enslaves the VXLAN device to it.
Addresses are Corral's (model/network.py): containers are created with an explicit `ipv4_address`, never left to
Docker's allocator (which may hand out the `.0` of an ip-range).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types

from corral.model.errors import Conflict, CorralError
from corral.model.network import BRIDGE_NAME, DOCKER_NETWORK, HostNetwork, NetworkSettings
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine

log = logging.getLogger(__name__)

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"


class NetworkRejected(CorralError):
    """The engine refused to create or remove the managed network."""

    status = 422
    code = "network_rejected"


@dataclass(frozen=True)
class WantedNetwork:
    name: str
    subnet: str
    ip_range: str
    gateway: str
    options: dict[str, str]
    labels: dict[str, str]


def wanted_network(settings: NetworkSettings, host: HostNetwork, environment_id: str) -> WantedNetwork:
    """The managed network this host needs (pure); its slice must be known."""
    return WantedNetwork(
        name=DOCKER_NETWORK,
        subnet=settings.subnet,
        ip_range=host.slice,
        gateway=host.gateway,
        options={BRIDGE_NAME_OPTION: BRIDGE_NAME, MTU_OPTION: str(settings.mtu)},
        labels={labels.ENVIRONMENT: environment_id},
    )


def network_differences(want: WantedNetwork, inspected: dict[str, Any]) -> list[str]:
    """What differs between `want` and the engine's inspect answer of the network, in words (pure)."""
    differences: list[str] = []
    if inspected.get("Driver") != "bridge":
        differences.append(f"driver {inspected.get('Driver')!r} is not 'bridge'")
    configs = ((inspected.get("IPAM") or {}).get("Config")) or []
    config = configs[0] if configs else {}
    for key, value in (("Subnet", want.subnet), ("IPRange", want.ip_range), ("Gateway", want.gateway)):
        if (config.get(key) or "") != value:
            differences.append(f"{key.lower()} {config.get(key) or 'none'} is not {value}")
    options = inspected.get("Options") or {}
    for key, value in want.options.items():
        if options.get(key) != value:
            differences.append(f"option {key}={options.get(key)} is not {value}")
    found_labels = inspected.get("Labels") or {}
    for key, value in want.labels.items():
        if found_labels.get(key) != value:
            differences.append(f"label {key}={found_labels.get(key)} is not {value}")
    return differences


def _explain(exc: docker.errors.APIError) -> str:
    text = exc.explanation or str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def ensure_network(engine: DockerEngine, want: WantedNetwork) -> str:
    """Make the engine have `want`; return what was done ("present", "created", "recreated").

    Raises Conflict when a network of that name has other settings and containers use it, NetworkRejected when
    the engine refuses, Unavailable when it cannot be reached.
    """

    def act(client: docker.DockerClient) -> str:
        api = client.api
        try:
            inspected: dict[str, Any] | None = api.inspect_network(want.name)
        except docker.errors.NotFound:
            inspected = None
        except docker.errors.APIError as exc:
            raise NetworkRejected(f"cannot inspect network {want.name}: {_explain(exc)}") from exc
        outcome = "created"
        if inspected is not None:
            differences = network_differences(want, inspected)
            if not differences:
                return "present"
            users = api.containers(all=True, filters={"network": want.name})
            if users:
                names = ", ".join(sorted(str((c.get("Names") or ["?"])[0]).lstrip("/") for c in users))
                raise Conflict(
                    f"network {want.name} has other settings ({'; '.join(differences)}) and is used by "
                    f"{len(users)} containers ({names}); remove them or restore the environment's network settings"
                )
            log.info("recreating network %s: %s", want.name, "; ".join(differences))
            try:
                api.remove_network(inspected.get("Id") or want.name)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                raise NetworkRejected(f"cannot remove the outdated network {want.name}: {_explain(exc)}") from exc
            outcome = "recreated"
        pool = docker.types.IPAMPool(subnet=want.subnet, iprange=want.ip_range, gateway=want.gateway)
        try:
            api.create_network(
                want.name,
                driver="bridge",
                options=dict(want.options),
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                labels=dict(want.labels),
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            raise NetworkRejected(f"cannot create network {want.name}: {_explain(exc)}") from exc
        log.info("%s network %s (subnet %s, ip range %s)", outcome, want.name, want.subnet, want.ip_range)
        return outcome

    return engine.call(f"ensure network {want.name}", act)
