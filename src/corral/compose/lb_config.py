"""Reading a load balancer service's rules from rancher-compose's `lb_config` and the v1 labels (issue 19), into
model/lb.py's `LbConfig` (pure).

Why its own module: the compose pipeline hands an LB service's rancher-compose entry and its labels here; every rule
is checked with a message naming the service, the field and the reason (`services.lb.lb_config.port_rules[1].
source_port: ...`), and nothing a user wrote is dropped silently: a Rancher leniency (a v1 `io.rancher.
loadbalancer.target.*` label, a port as a string) is applied with a warning.

v1 labels (Rancher 1.1 and older catalog templates): the LB's `ports` give the source ports, and
`io.rancher.loadbalancer.target.SERVICE: "[hostname][:source_port][/path]=target_port, ..."` the routes; without
a source port a route applies to every source port; `io.rancher.loadbalancer.ssl.ports: "443"` makes those source
ports https.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from corral.model.certificates import CERTIFICATE_NAME
from corral.model.errors import InvalidInput
from corral.model.lb import (
    HEALTH_CHECK_PORT,
    LB_IMAGE_PREFIX,
    LB_LABEL,
    LbConfig,
    LbProtocol,
    PortRule,
    Stickiness,
    is_lb_service,
    lb_config_to_dict,
)
from corral.model.stack import ServiceSpec

LB_RUNTIME_IMAGE = "corral/haproxy:latest"  # built by scripts/images.sh
V1_TARGET_PREFIX = "io.rancher.loadbalancer.target."
V1_SSL_PORTS = "io.rancher.loadbalancer.ssl.ports"
RULE_KEYS = frozenset(
    {"source_port", "target_port", "service", "protocol", "hostname", "path", "priority", "backend_name", "selector"}
)
STICKINESS_KEYS = frozenset({"name", "cookie", "domain", "indirect", "nocache", "postonly", "mode"})
STICKINESS_MODES = ("insert", "rewrite", "prefix")
CONFIG_KEYS = frozenset({"port_rules", "certs", "default_cert", "stickiness_policy", "config"})
_HOSTNAME = re.compile(
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(\.\*)?$"
)
_SERVICE = re.compile(r"^([a-z0-9][a-z0-9_.-]*/)?[a-z0-9][a-z0-9_.-]*$", re.IGNORECASE)
_V1_ROUTE = re.compile(r"^(?P<host>[^:/=]*)(?::(?P<port>\d+))?(?P<path>/[^=]*)?=(?P<target>\d+)$")


def read_lb_config(
    service: str,
    raw: Any,
    labels: Mapping[str, str] | None = None,
    published: Sequence[int] = (),
) -> LbConfig:
    """The LB rules of `service` from its rancher-compose `lb_config` (`raw`, None when absent), else from its v1
    labels and published source ports. Raises InvalidInput naming the field."""
    where = f"services.{service}.lb_config"
    labels = labels or {}
    if raw is None:
        return _from_v1_labels(service, labels, published)
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: must be a mapping, not {type(raw).__name__}", field=where)
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {', '.join(unknown)}", field=where)
    warnings: list[str] = []
    rules_raw = raw.get("port_rules") or []
    if not isinstance(rules_raw, list):
        raise InvalidInput(f"{where}.port_rules: must be a list", field=f"{where}.port_rules")
    rules = [_rule(f"{where}.port_rules[{i}]", item, warnings) for i, item in enumerate(rules_raw)]
    certs = _names(f"{where}.certs", raw.get("certs") or [])
    default_cert = _certificate_name(
        f"{where}.default_cert", _text(f"{where}.default_cert", raw.get("default_cert", ""))
    )
    config = _text(f"{where}.config", raw.get("config", ""))
    stickiness = _stickiness(f"{where}.stickiness_policy", raw.get("stickiness_policy"))
    result = LbConfig(tuple(order_rules(rules)), certs, default_cert, stickiness, config, tuple(warnings))
    _check_tls(where, result)
    return result


def order_rules(rules: Sequence[PortRule]) -> list[PortRule]:
    """Rules with a priority first (lower wins), then the rest in their written order (a stable sort)."""
    return sorted(rules, key=lambda r: (r.priority == 0, r.priority))


def _rule(where: str, item: Any, warnings: list[str]) -> PortRule:
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where}: must be a mapping", field=where)
    unknown = sorted(set(item) - RULE_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {', '.join(unknown)}", field=where)
    source = _port(f"{where}.source_port", item.get("source_port"), warnings)
    if source == HEALTH_CHECK_PORT:
        raise InvalidInput(
            f"{where}.source_port: {HEALTH_CHECK_PORT} is the load balancer's own health check port",
            field=f"{where}.source_port",
        )
    target = _port(f"{where}.target_port", item.get("target_port"), warnings)
    protocol_text = str(item.get("protocol") or "http").lower()
    try:
        protocol = LbProtocol(protocol_text)
    except ValueError:
        choices = ", ".join(p.value for p in LbProtocol)
        raise InvalidInput(
            f"{where}.protocol: {protocol_text!r} is not one of {choices}", field=f"{where}.protocol"
        ) from None
    service = _text(f"{where}.service", item.get("service", ""))
    selector = _text(f"{where}.selector", item.get("selector", ""))
    if not service and not selector:
        raise InvalidInput(f"{where}.service: needs a service or a selector", field=f"{where}.service")
    if service and not _SERVICE.match(service):
        raise InvalidInput(
            f"{where}.service: {service!r} is not `service` or `stack/service`", field=f"{where}.service"
        )
    hostname = _text(f"{where}.hostname", item.get("hostname", ""))
    if hostname and not _HOSTNAME.match(hostname):
        raise InvalidInput(f"{where}.hostname: {hostname!r} is not a host name", field=f"{where}.hostname")
    path = _text(f"{where}.path", item.get("path", ""))
    if path and not path.startswith("/"):
        raise InvalidInput(f"{where}.path: {path!r} must start with /", field=f"{where}.path")
    if (hostname or path) and not protocol.is_http:
        raise InvalidInput(
            f"{where}: hostname and path routing needs protocol http or https, not {protocol.value}", field=where
        )
    priority = item.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        raise InvalidInput(f"{where}.priority: must be a whole number >= 0", field=f"{where}.priority")
    backend = _text(f"{where}.backend_name", item.get("backend_name", ""))
    return PortRule(source, target, service, protocol, hostname.lower(), path, priority, backend, selector)


def _port(where: str, value: Any, warnings: list[str]) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        warnings.append(f"{where}: the port {value!r} is a string; read as a number (Rancher accepted it)")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidInput(f"{where}: must be a port number within 1-65535, not {value!r}", field=where)
    return value


def _text(where: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: must be a string, not {type(value).__name__}", field=where)
    return value


def _names(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{where}: must be a list of certificate names", field=where)
    for name in value:
        _certificate_name(where, name)
    return tuple(value)


def _certificate_name(where: str, name: str) -> str:
    if name and not CERTIFICATE_NAME.fullmatch(name):
        raise InvalidInput(f"{where}: {name!r} is not a certificate name (`corral certs ls`)", field=where)
    return name


def _stickiness(where: str, raw: Any) -> Stickiness | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: must be a mapping", field=where)
    unknown = sorted(set(raw) - STICKINESS_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {', '.join(unknown)}", field=where)
    mode = str(raw.get("mode") or "insert").lower()
    if mode not in STICKINESS_MODES:
        raise InvalidInput(f"{where}.mode: {mode!r} is not one of {', '.join(STICKINESS_MODES)}", field=f"{where}.mode")
    cookie = _text(f"{where}.cookie", raw.get("cookie") or "lb")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cookie):
        raise InvalidInput(f"{where}.cookie: {cookie!r} is not a cookie name", field=f"{where}.cookie")
    domain = _text(f"{where}.domain", raw.get("domain", ""))
    if domain and not _HOSTNAME.match(domain.lstrip(".")):
        raise InvalidInput(f"{where}.domain: {domain!r} is not a domain", field=f"{where}.domain")
    flags = {key: bool(raw.get(key, False)) for key in ("indirect", "nocache", "postonly")}
    return Stickiness(_text(f"{where}.name", raw.get("name", "")), cookie, domain, mode=mode, **flags)


def _check_tls(where: str, config: LbConfig) -> None:
    if config.needs_certificate and not (config.certs or config.default_cert):
        raise InvalidInput(
            f"{where}.certs: an https or tls port rule needs a certificate (certs or default_cert)",
            field=f"{where}.certs",
        )


def _from_v1_labels(service: str, labels: Mapping[str, str], published: Sequence[int]) -> LbConfig:
    where = f"services.{service}.labels"
    targets = {k[len(V1_TARGET_PREFIX) :]: v for k, v in labels.items() if k.startswith(V1_TARGET_PREFIX)}
    if not targets:
        return LbConfig()
    ssl_ports = _v1_ports(f"{where}.{V1_SSL_PORTS}", labels.get(V1_SSL_PORTS, ""))
    sources = sorted(set(published))
    if not sources:
        raise InvalidInput(
            f"{where}: {V1_TARGET_PREFIX}* labels route the load balancer's published ports, and it publishes none",
            field=f"services.{service}.ports",
        )
    rules: list[PortRule] = []
    for target_service, text in sorted(targets.items()):
        key = f"{where}.{V1_TARGET_PREFIX}{target_service}"
        if not _SERVICE.match(target_service):
            raise InvalidInput(f"{key}: {target_service!r} is not `service` or `stack/service`", field=key)
        for route in filter(None, (part.strip() for part in text.split(","))):
            found = _V1_ROUTE.match(route)
            if found is None:
                raise InvalidInput(f"{key}: {route!r} is not [hostname][:source_port][/path]=target_port", field=key)
            host, port_text = found["host"], found["port"]
            if host.isdigit() and not port_text:  # "80=8080": a source port, no hostname
                host, port_text = "", host
            port = int(port_text) if port_text else None
            if port is not None and port not in sources:
                raise InvalidInput(
                    f"{key}: {route!r} routes port {port}, which the service does not publish", field=key
                )
            for source in [port] if port is not None else sources:
                protocol = LbProtocol.HTTPS if source in ssl_ports else LbProtocol.HTTP
                rules.append(
                    PortRule(
                        source,
                        int(found["target"]),
                        target_service,
                        protocol,
                        host.lower(),
                        found["path"] or "",
                    )
                )
    warning = f"{where}: v1 {V1_TARGET_PREFIX}* labels read as lb_config port_rules (Rancher 1.1 style)"
    return LbConfig(tuple(rules), warnings=(warning,))


def _v1_ports(where: str, text: str) -> frozenset[int]:
    ports: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise InvalidInput(f"{where}: {part!r} is not a port number", field=where)
        ports.add(int(part))
    return frozenset(ports)


def lb_service(spec: ServiceSpec, raw: Any, warnings: list[str], file_name: str = "rancher-compose.yml") -> ServiceSpec:
    """`spec` with its load balancer rules when it is an LB service (Rancher's LB image runs as `LB_RUNTIME_IMAGE`,
    said in a warning); any other service is returned as it is (an `lb_config` on it is reported and ignored, as
    Rancher did)."""
    labels = dict(spec.launch.labels)
    if not is_lb_service(spec.launch.image, labels):
        if raw is not None:
            warnings.append(
                f"{file_name}: service {spec.name}: lb_config is ignored: the service is not a load balancer"
                f" (image {LB_IMAGE_PREFIX} or label {LB_LABEL})"
            )
        return spec
    published = [p.container_port for p in spec.launch.ports if p.protocol == "tcp"]
    try:
        config = read_lb_config(spec.name, raw, labels, published)
    except InvalidInput as exc:
        raise InvalidInput(f"{file_name}: {exc.message}", field=f"{file_name}:{exc.field}") from None
    warnings.extend(f"{file_name}: {w}" for w in config.warnings)
    launch = spec.launch
    if launch.image.split(":", 1)[0].split("@", 1)[0] == LB_IMAGE_PREFIX:
        warnings.append(f"service {spec.name}: {launch.image} runs as {LB_RUNTIME_IMAGE} (HAProxy 2.6)")
        launch = dataclasses.replace(launch, image=LB_RUNTIME_IMAGE)
    return dataclasses.replace(spec, launch=launch, lb_config=lb_config_to_dict(config))
