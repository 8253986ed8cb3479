"""JSON shapes of resources, shared by the REST API and the event stream so both always agree."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from corral.model.admission import TokenUsage
from corral.model.entities import Environment, Host, ObservedContainer, RegistrationToken
from corral.model.network import HostNetwork
from corral.model.policy import ContainerPolicy
from corral.model.quotas import Quotas
from corral.server.views.overlay_status import overlay_connectivity


def environment_view(env: Environment, quota_defaults: Quotas | None = None) -> dict[str, Any]:
    """`quotas` are the limits in force (the server's defaults under the environment's own), `quota_overrides`
    the environment's own."""
    return {
        "id": env.id,
        "name": env.name,
        "orchestration": env.orchestration.value,
        "description": env.description,
        "created_at": env.created_at,
        "network": env.network.to_dict(),
        "allow": ContainerPolicy(env.allow).names(),
        "require_approval": env.require_approval,
        "quotas": (quota_defaults or Quotas()).with_overrides(env.quotas).to_dict(),
        "quota_overrides": dict(env.quotas),
    }


def host_view(host: Host, hosts: Iterable[Host] | None = None) -> dict[str, Any]:
    """With `hosts` (the environment's), overlay.peers / .broken / .reported too (server/views/overlay_status.py)."""
    view: dict[str, Any] = {
        "id": host.id,
        "environment_id": host.environment_id,
        "name": host.name,
        "state": host.state.value,
        "state_reason": host.state_reason,
        "driver": host.driver,
        "address": host.address,
        "arch": host.facts.arch,
        "labels": dict(host.labels),
        "facts": asdict(host.facts),
        "container_count": host.container_count,
        "schedulable": host.schedulable,
        "evacuating": host.evacuating,
        "images": {ref: list(archs) for ref, archs in sorted(host.images.items())},
        "overlay": {
            "slice": host.overlay_slice,
            "gateway": HostNetwork(host.id, host.name, host.address, host.overlay_slice).gateway,
            "public_key": host.overlay_key,  # WireGuard's public half (the private key never leaves the host)
        },
        "last_seen": host.last_seen,
        "created_at": host.created_at,
    }
    if hosts is not None:
        view["overlay"].update(overlay_connectivity(host, hosts))
    return view


def token_view(token: RegistrationToken, now: float | None = None) -> dict[str, Any]:
    """A token without its secret (which is never stored): expiry, uses and state (`active`, `expired`,
    `used-up`, `revoked`; model/admission.py)."""
    usage = TokenUsage(token.id, token.expires_at, token.max_uses, token.uses, token.revoked_at)
    return {
        "id": token.id,
        "environment_id": token.environment_id,
        "description": token.description,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "max_uses": token.max_uses,
        "uses": token.uses,
        "revoked_at": token.revoked_at,
        "state": usage.state(time.time() if now is None else now).value,
    }


def container_view(host_id: str, container: ObservedContainer) -> dict[str, Any]:
    return {"host_id": host_id, "managed": container.managed, **asdict(container)}
