"""A load balancer service's rules (issue 19): what rancher-compose's `lb_config` (or the v1
`io.rancher.loadbalancer.*` labels) asks for, as plain frozen data shared by the compose pipeline (which reads it,
compose/lb_config.py), the server and the agent (which renders HAProxy's configuration from it and the targets'
addresses, network/haproxy_config.py).

Why its own vocabulary: a port rule routes a source port, hostname and path to a target service and port; the same
rule list must mean the same thing in every layer, and every field has a Rancher meaning the user already knows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final

LB_IMAGE_PREFIX: Final = "rancher/lb-service-haproxy"
LB_LABEL: Final = "io.corral.lb"
HEALTH_CHECK_PORT: Final = 42  # the LB's own health check, as in Rancher: never a source port


class LbProtocol(StrEnum):
    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"
    TLS = "tls"
    SNI = "sni"

    @property
    def is_http(self) -> bool:
        """HAProxy runs this rule in `mode http` (hostname and path routing, stickiness)."""
        return self in (LbProtocol.HTTP, LbProtocol.HTTPS)

    @property
    def terminates_tls(self) -> bool:
        return self in (LbProtocol.HTTPS, LbProtocol.TLS)


@dataclass(frozen=True)
class PortRule:
    """Route `source_port` (+ `hostname`, `path`) to `target_port` of `service` (`svc` or `stack/svc`).

    `priority`: lower wins (Rancher); rules without one keep their order after the ones with one."""

    source_port: int
    target_port: int
    service: str = ""
    protocol: LbProtocol = LbProtocol.HTTP
    hostname: str = ""
    path: str = ""
    priority: int = 0
    backend_name: str = ""
    selector: str = ""


@dataclass(frozen=True)
class Stickiness:
    """`stickiness_policy`: a cookie HAProxy inserts (mode `insert`) or learns from the application (`rewrite`,
    `prefix`)."""

    name: str = ""
    cookie: str = "lb"
    domain: str = ""
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    mode: str = "insert"


@dataclass(frozen=True)
class LbConfig:
    port_rules: tuple[PortRule, ...] = ()
    certs: tuple[str, ...] = ()  # certificate names in the environment's store
    default_cert: str = ""
    stickiness: Stickiness | None = None
    config: str = ""  # appended to the generated haproxy.cfg
    warnings: tuple[str, ...] = field(default=(), compare=False)  # leniencies applied while reading it

    @property
    def needs_certificate(self) -> bool:
        return any(r.protocol.terminates_tls for r in self.port_rules)


HAPROXY_IMAGE = "corral/haproxy"  # built by scripts/images.sh


def is_lb_service(image: str, labels: dict[str, str]) -> bool:
    """An LB service: Rancher's LB image (any tag) or the `io.corral.lb` label."""
    return image.split(":", 1)[0].split("@", 1)[0] == LB_IMAGE_PREFIX or labels.get(LB_LABEL, "") not in ("", "false")


def runs_haproxy(image: str, labels: dict[str, str]) -> bool:
    """A container of an LB service (Rancher's image is run as corral/haproxy): the agent, not Docker, forwards its
    fixed host ports, so an upgrade can start the new one beside the old one (network/lb_ports.py)."""
    return is_lb_service(image, labels) or image.split(":", 1)[0].split("@", 1)[0] == HAPROXY_IMAGE


def lb_config_to_dict(config: LbConfig) -> dict[str, Any]:
    """Plain JSON-able data (stored with the service spec, sent in the `network` message)."""
    data = asdict(config)
    del data["warnings"]
    for rule in data["port_rules"]:
        rule["protocol"] = str(rule["protocol"])
    return data


def lb_config_from_dict(data: dict[str, Any]) -> LbConfig:
    rules = tuple(
        PortRule(**{**rule, "protocol": LbProtocol(rule.get("protocol", "http"))})
        for rule in data.get("port_rules", ())
    )
    sticky = data.get("stickiness")
    return LbConfig(
        port_rules=rules,
        certs=tuple(data.get("certs", ())),
        default_cert=str(data.get("default_cert", "")),
        stickiness=Stickiness(**sticky) if isinstance(sticky, dict) else None,
        config=str(data.get("config", "")),
    )
