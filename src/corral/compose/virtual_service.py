"""Reading external services and service aliases from a stack's files (issue 19 item 4) into model/virtual.py.

Why its own module: Rancher 1.x wrote an external service as `image: rancher/external-service` in
docker-compose.yml with `external_ips` or `hostname` in rancher-compose.yml, and an alias as `image:
rancher/dns-service` whose `links` (and `external_links`) name the services it stands for. Neither runs a container:
the spec gets scale 0 and its `virtual` data, said in a warning when a scale was written. A port `health_check` on
an external service by IP moves into its `virtual` data (the agents probe those IPs, agent/external_health.py); on
a hostname or an alias it is dropped with a warning saying why. Every error names the file, the service and the
field.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Any

from corral.model.errors import InvalidInput
from corral.model.stack import ServiceSpec
from corral.model.virtual import EXTERNAL_IMAGE, Virtual, image_kind

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$"
)


def virtual_service(
    spec: ServiceSpec, external_ips: Any, hostname: Any, warnings: list[str], file_name: str = "rancher-compose.yml"
) -> ServiceSpec:
    """`spec` as an external service or alias when its image says so; any other service as it is (`external_ips`
    or `hostname` on it are reported and ignored, as Rancher did)."""
    kind = image_kind(spec.launch.image)
    where = f"{file_name}: services.{spec.name}"
    if kind != "external":
        for key, value in (("external_ips", external_ips), ("hostname", hostname)):
            if value is not None:
                warnings.append(f"{where}.{key}: ignored: only an {EXTERNAL_IMAGE} service has one")
    if not kind:
        return spec
    if kind == "external":
        virtual = Virtual(
            "external", _ips(f"{where}.external_ips", external_ips), _hostname(f"{where}.hostname", hostname)
        )
        if bool(virtual.external_ips) == bool(virtual.hostname):
            raise InvalidInput(
                f"{where}: an external service needs external_ips or hostname (one of them)",
                field=f"{where}.external_ips",
            )
    else:
        targets = [link.partition(":")[0] for link in spec.launch.links]
        targets += [link.partition(":")[0] for link in spec.launch.external_links]
        if not targets:
            raise InvalidInput(
                f"services.{spec.name}.links: an alias (rancher/dns-service) needs links to the services it stands for",
                field=f"services.{spec.name}.links",
            )
        virtual = Virtual("alias", targets=tuple(dict.fromkeys(targets)))
    if spec.scale not in (0, 1):
        warnings.append(f"service {spec.name}: scale {spec.scale} ignored: an {kind} service runs no container")
    check = spec.health()
    if check is not None and not (virtual.external_ips and check.probes):
        warnings.append(f"{where}.health_check: not applied: {_unchecked(kind, virtual, check.probes)}")
        check = None
    virtual = dataclasses.replace(virtual, health_check=check)
    return dataclasses.replace(spec, scale=0, virtual=virtual.to_dict(), health_check=None)


def _unchecked(kind: str, virtual: Virtual, probes: bool) -> str:
    """Why a health check on this service cannot be applied (only an external service's IPs are probed)."""
    if kind == "alias":
        return "an alias has no address of its own to probe (its services' containers are checked by their own checks)"
    if virtual.hostname:
        return "a hostname is a CNAME: it has no address of ours to probe (DNS answers it as it resolves)"
    if not probes:
        return (
            "an external IP is probed on a port (give `port`, and `request_line` for HTTP); a command needs a container"
        )
    return "nothing to probe"


def _ips(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput(f"{where}: must be a list of IP addresses", field=where)
    ips = []
    for item in value:
        try:
            address = ipaddress.ip_address(str(item).strip())
        except ValueError:
            raise InvalidInput(f"{where}: {item!r} is not an IP address", field=where) from None
        if address.version != 4:
            raise InvalidInput(f"{where}: {item!r}: only IPv4 addresses are answered (A records)", field=where)
        ips.append(str(address))
    return tuple(dict.fromkeys(ips))


def _hostname(where: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _HOSTNAME.match(value):
        raise InvalidInput(f"{where}: {value!r} is not a host name", field=where)
    return value.lower().rstrip(".")
