"""Services without containers (issue 19 item 4): Rancher 1.x's external services (`rancher/external-service`, with
rancher-compose `external_ips` or `hostname`) and service aliases (`rancher/dns-service`, whose `links` name the
services it stands for), as plain data shared by the compose pipeline, DNS and the load balancers.

Why one small vocabulary: DNS answers such a service's name with its external IPs (A records), its hostname (a
CNAME) or the live containers of the services it aliases; a load balancer sends to the same addresses; the
orchestrator runs no container for it (scale 0). Every layer must read the same dict the same way. An external
service by IP may carry a port health check (model/health.py's `HealthCheck.to_dict`): each agent probes those IPs
and leaves the unhealthy ones out of DNS and its load balancers (agent/external_health.py), as Rancher 1.x did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from corral.model.health import HealthCheck

EXTERNAL_IMAGE: Final = "rancher/external-service"
ALIAS_IMAGE: Final = "rancher/dns-service"


def image_kind(image: str) -> str:
    """ "external", "alias" or "" for an image reference (any tag)."""
    base = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image.split("@", 1)[0]
    return {EXTERNAL_IMAGE: "external", ALIAS_IMAGE: "alias"}.get(base, "")


@dataclass(frozen=True)
class Virtual:
    kind: str  # "external" | "alias"
    external_ips: tuple[str, ...] = ()
    hostname: str = ""
    targets: tuple[str, ...] = ()  # alias: "service" (own stack) or "stack/service"
    health_check: HealthCheck | None = None  # external_ips only: probed by the agents

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "external_ips": list(self.external_ips),
            "hostname": self.hostname,
            "targets": list(self.targets),
        }
        if self.health_check is not None:  # the dict stays as it was for every service without one
            data["health_check"] = self.health_check.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Virtual | None:
        if not data or data.get("kind") not in ("external", "alias"):
            return None
        return cls(
            str(data["kind"]),
            tuple(str(ip) for ip in data.get("external_ips", ())),
            str(data.get("hostname", "")),
            tuple(str(t) for t in data.get("targets", ())),
            HealthCheck.from_dict(check) if isinstance(check := data.get("health_check"), dict) else None,
        )

    def target_keys(self, stack: str) -> list[tuple[str, str]]:
        """(stack, service) of each aliased service, `stack` for those written without one."""
        keys = []
        for target in self.targets:
            target_stack, _, name = target.rpartition("/")
            keys.append(((target_stack or stack).lower(), name.lower()))
        return keys
