"""HAProxy's configuration for one load balancer container, from its rules and its targets' addresses (pure).

Why pure and separate: the agent renders it every time a rule, a target's health or a certificate changes and hands
it to HAProxy (master-worker, reloaded with socket transfer so no connection is dropped); rendering the same inputs
must give the same bytes, so a reload happens only on a real change. One frontend per source port (TLS terminated
there for https/tls rules with each certificate the LB names as one `crt` file: HAProxy picks by SNI among them and
serves the first, `default_cert`, to any other client); HTTP rules route by Host header (`*.a.com`, `a.com.*`,
exact) and path prefix in rule order; each (service, target port, mode) is one backend of the running, healthy
targets only (none: HAProxy answers 503); a connection a target refuses or drops (it stopped before the next
configuration arrived) is retried on another one (`retries`, `option redispatch`, `retry-on` for HTTP) and HAProxy's
own check takes such a target out after three missed checks, two seconds apart (HAProxy's defaults; a check's
connect waits at most `inter`, and a busy target whose small accept queue drops a SYN answers the retransmitted one
a second later: with `inter 1s` that was a miss, and three of them emptied a backend whose one target was busy and
answered 503); stickiness inserts a cookie. Port 42 answers the LB's own health
check. `config` is appended as the user wrote it. Only the abnormal requests are logged (`dontlog-normal`: errors,
retries, redispatches, 5xx) to the container's output: a retried request means a target left without draining.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from corral.model.lb import HEALTH_CHECK_PORT, LbConfig, PortRule

CERT_DIR = "/usr/local/etc/haproxy/certs"
RUNTIME_SOCKET = "/var/run/haproxy.sock"
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


@dataclass(frozen=True)
class Target:
    """One running, healthy container of a target service."""

    name: str
    address: str


def backend_name(rule: PortRule) -> str:
    if rule.backend_name:
        return _safe(rule.backend_name)
    mode = "http" if rule.protocol.is_http else "tcp"
    return _safe(f"{rule.service or rule.selector}_{rule.target_port}_{mode}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _host_acl(hostname: str) -> str:
    host = "req.hdr(host),field(1,:),lower"
    if hostname.startswith("*."):
        return f"{host} -m end {hostname[1:]}"
    if hostname.endswith(".*"):
        return f"{host} -m beg {hostname[:-1]}"
    return f"{host} -m str {hostname}"


def certificate_order(config: LbConfig, available: Iterable[str]) -> list[str]:
    """The certificates a TLS bind loads, of those `available` (sent by the server): `default_cert` first (HAProxy
    serves the first one to a client whose SNI matches none), then `certs` in their written order."""
    have = set(available)
    ordered = [config.default_cert, *config.certs]
    return [name for index, name in enumerate(ordered) if name and name in have and name not in ordered[:index]]


def render(config: LbConfig, targets: Mapping[str, Sequence[Target]], *, certificates: Sequence[str] = ()) -> str:
    """haproxy.cfg for `config`; `targets` maps each rule's service (or selector) to its healthy containers;
    `certificates` are the names of the PEM bundles in CERT_DIR (`certificate_order`). A TLS-terminating port
    without any certificate is left out (a plain listener there would answer TLS clients with garbage)."""
    lines = [
        "global",
        f"    stats socket {RUNTIME_SOCKET} mode 600 level admin expose-fd listeners",
        "    maxconn 4096",
        "    log stdout format raw local0",
        "",
        "defaults",
        "    log global",
        "    option dontlog-normal",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    option redispatch",
        "    retries 3",
        "    timeout check 2s",
        "    default-server inter 2s fall 3 rise 2",
        "",
        "frontend health",
        f"    bind *:{HEALTH_CHECK_PORT}",
        "    mode http",
        "    monitor-uri /",
        "",
    ]
    by_port: dict[int, list[PortRule]] = {}
    for rule in config.port_rules:
        by_port.setdefault(rule.source_port, []).append(rule)
    backends: dict[str, PortRule] = {}
    for port, rules in sorted(by_port.items()):
        if any(r.protocol.terminates_tls for r in rules) and not certificates:
            lines += [f"# port {port}: waiting for its certificate ({', '.join(missing_certificates(config, ()))})", ""]
            continue
        lines += _frontend(port, rules, certificates)
        for rule in rules:
            backends.setdefault(backend_name(rule), rule)
    for name, rule in backends.items():
        lines += _backend(name, rule, targets.get(rule.service or rule.selector, ()), config)
    if config.config.strip():
        lines += ["# lb_config.config", config.config.rstrip(), ""]
    return "\n".join(lines) + "\n"


def missing_certificates(config: LbConfig, available: Iterable[str]) -> list[str]:
    have = set(available)
    return sorted({config.default_cert, *config.certs} - have - {""})


def _frontend(port: int, rules: list[PortRule], certificates: Sequence[str]) -> list[str]:
    http = rules[0].protocol.is_http
    bind = f"    bind *:{port}"
    if any(r.protocol.terminates_tls for r in rules):
        bind += " ssl" + "".join(f" crt {CERT_DIR}/{name}.pem" for name in certificates)
        if http:
            bind += " alpn http/1.1"
    lines = [f"frontend port_{port}", bind, f"    mode {'http' if http else 'tcp'}"]
    if http:
        lines += ["    option forwardfor", "    option httplog"]
    default = ""
    for index, rule in enumerate(rules):
        backend = backend_name(rule)
        conditions = []
        if rule.hostname:
            lines.append(f"    acl host_{index} {_host_acl(rule.hostname)}")
            conditions.append(f"host_{index}")
        if rule.path:
            lines.append(f"    acl path_{index} path_beg {rule.path}")
            conditions.append(f"path_{index}")
        if conditions:
            lines.append(f"    use_backend {backend} if {' '.join(conditions)}")
        elif not default:
            default = backend
    if default:
        lines.append(f"    default_backend {default}")
    return [*lines, ""]


def _backend(name: str, rule: PortRule, targets: Sequence[Target], config: LbConfig) -> list[str]:
    http = rule.protocol.is_http
    lines = [f"backend {name}", f"    mode {'http' if http else 'tcp'}", "    balance roundrobin"]
    if http:  # a target that went away between two configurations: the request goes to another one
        lines.append("    retry-on all-retryable-errors")
    sticky = config.stickiness if http else None
    if sticky is not None:
        options = [f"cookie {sticky.cookie} {sticky.mode}"]
        options += [flag for flag in ("indirect", "nocache", "postonly") if getattr(sticky, flag)]
        if sticky.domain:
            options.append(f"domain {sticky.domain}")
        lines.append("    " + " ".join(options))
    for target in sorted(targets, key=lambda t: t.name):
        server = f"    server {_safe(target.name)} {target.address}:{rule.target_port} check"
        if not _IPV4.match(target.address):  # an external service's hostname: resolved at start, kept if it fails
            server += " init-addr last,libc,none"
        if sticky is not None:
            server += f" cookie {_safe(target.name)}"
        lines.append(server)
    return [*lines, ""]
