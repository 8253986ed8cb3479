"""Which certificates (chain + key) each host receives with its desired set: only those named by the load balancers
whose containers it runs (issue 19 item 3).

Why here and not in the agent's message builder: like secrets (server/control/secret_delivery.py), the keys are unsealed
from the store (store/certificates.py) at the moment of sending, once per environment, and leave the server only
inside a `desired` message on the host's pinned TLS websocket (never logged). A host without an LB receives none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corral.model.lb import lb_config_from_dict
from corral.model.stack import Service
from corral.store.certificates import CertificateStore


def lb_certificate_names(services: Iterable[Service]) -> dict[tuple[str, str, str], set[str]]:
    """(environment id, stack, service) -> the certificates an LB service names (`certs` and `default_cert`)."""
    result: dict[tuple[str, str, str], set[str]] = {}
    for service in services:
        if not service.spec.lb_config:
            continue
        config = lb_config_from_dict(dict(service.spec.lb_config))
        names = {*config.certs, config.default_cert} - {""}
        if names:
            result[(service.environment_id, service.stack, service.name)] = names
    return result


def certificates_by_host(
    certificates: CertificateStore | None,
    services: Iterable[Service],
    desired: Mapping[str, list[dict[str, Any]]],
) -> dict[str, dict[str, str]]:
    """host id -> {certificate name: PEM bundle} for the hosts whose desired containers belong to LBs naming some."""
    if certificates is None:
        return {}
    named = lb_certificate_names(services)
    if not named:
        return {}
    wanted: dict[str, tuple[str, set[str]]] = {}  # host id -> (environment id, names)
    for host_id, entries in desired.items():
        for entry in entries:
            slot = entry["slot"]
            names = named.get((slot["environment_id"], slot["stack"], slot["service"]))
            if names:
                environment_id, so_far = wanted.setdefault(host_id, (slot["environment_id"], set()))
                so_far.update(names)
    result: dict[str, dict[str, str]] = {}
    for environment_id in {e for e, _ in wanted.values()}:
        hosts = {h: names for h, (e, names) in wanted.items() if e == environment_id}
        bundles = certificates.bundles(environment_id, set().union(*hosts.values()))
        for host_id, names in hosts.items():
            result[host_id] = {name: bundles[name] for name in sorted(names) if name in bundles}
    return result
