"""`ports` and `expose` entries, short and long syntax, into `PortSpec`s and exposed-port strings.

Why ranges are expanded here: the orchestrator and the agent reason about single host ports (conflicts, iptables),
so "8000-8001:80-81" becomes two `PortSpec`s. A port without a host port ("80") is published on a host port the
server picks per container from `CORRAL_HOST_PORT_RANGE` (orchestrator/host_ports.py), like Rancher did.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from corral.compose.location import Loc
from corral.compose.values import as_int, as_str, kind, mapping, scalar_text, sequence
from corral.model.stack import PortSpec

MAX_RANGE = 1000
_PORT_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_LONG_KEYS = {"target", "published", "protocol", "host_ip", "mode", "name", "app_protocol"}

Protocol = Literal["tcp", "udp"]


def parse_ports(value: Any, loc: Loc, warnings: list[str]) -> tuple[PortSpec, ...]:
    ports: list[PortSpec] = []
    seen: dict[tuple[str, int, str], int] = {}
    for i, item in enumerate(sequence(value, loc)):
        entry = loc.key(i)
        specs = _long(item, entry) if isinstance(item, dict) else _short(item, entry)
        for spec in specs:
            if spec.host_port is not None:
                key = (spec.host_ip, spec.host_port, spec.protocol)
                if key in seen:
                    raise entry.error(
                        f"host port {spec.host_port}/{spec.protocol} is already published by ports[{seen[key]}]"
                    )
                seen[key] = i
        ports.extend(specs)
    return tuple(ports)


def parse_expose(value: Any, loc: Loc, warnings: list[str]) -> tuple[str, ...]:
    exposed: list[str] = []
    for i, item in enumerate(sequence(value, loc)):
        entry = loc.key(i)
        text = as_str(item, entry, numbers=True).strip()
        if ":" in text:  # Rancher 1.6 templates write "8080:8080"; Docker exposes the container side only
            container_side = text.rpartition(":")[2]
            warnings.append(
                f"{entry.prefix()}: {text!r} names a host port, which expose does not publish; "
                f"exposing {container_side!r} (use ports to publish it)"
            )
            text = container_side
        ports, _, proto = text.partition("/")
        start, end = _range(ports, entry, text)
        protocol = _protocol(proto or "tcp", entry)
        port_text = str(start) if start == end else f"{start}-{end}"
        exposed.append(port_text if protocol == "tcp" else f"{port_text}/{protocol}")
    return tuple(exposed)


def _short(item: Any, loc: Loc) -> list[PortSpec]:
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise loc.error(f"must be a port string like '8080:80' or a mapping, not {kind(item)}")
    original = scalar_text(item, loc).strip()
    text, slash, proto = original.rpartition("/") if "/" in original else (original, "", "")
    protocol = _protocol(proto, loc) if slash else "tcp"
    host_ip = ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise loc.error(f"invalid port {original!r}: expected [IPv6]:HOST:CONTAINER")
        host_ip = _ip(text[1:close], loc, original)
        parts = text[close + 2 :].split(":")
        if len(parts) != 2:
            raise loc.error(f"invalid port {original!r}: expected [IPv6]:HOST:CONTAINER")
        host, container = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            host, container = "", parts[0]
        elif len(parts) == 2:
            host, container = parts
        elif len(parts) == 3:
            host_ip = _ip(parts[0], loc, original) if parts[0] else ""
            host, container = parts[1], parts[2]
        else:
            raise loc.error(f"invalid port {original!r}: expected [IP:][HOST:]CONTAINER[/PROTOCOL]")
    c_start, c_end = _range(container, loc, original)
    if not host:  # a random host port, picked by the server per container
        return [PortSpec(container_port=p, protocol=protocol, host_ip=host_ip) for p in range(c_start, c_end + 1)]
    h_start, h_end = _range(host, loc, original)
    if h_end - h_start != c_end - c_start:
        raise loc.error(f"invalid port {original!r}: host and container port ranges must have the same size")
    return [
        PortSpec(container_port=c_start + k, host_port=h_start + k, protocol=protocol, host_ip=host_ip)
        for k in range(c_end - c_start + 1)
    ]


def _long(item: dict[str, Any], loc: Loc) -> list[PortSpec]:
    item = mapping(item, loc)
    for key in item:
        if key not in _LONG_KEYS:
            raise loc.key(key).error(f"unknown port key {key!r} (known: {', '.join(sorted(_LONG_KEYS))})")
    if "target" not in item:
        raise loc.error("a port mapping needs 'target' (the container port)")
    target = as_int(item["target"], loc.key("target"), low=1, high=65535)
    published: int | None = None
    raw = item.get("published")
    if raw is not None and raw != "":
        published = as_int(raw, loc.key("published"), low=1, high=65535)
    protocol = _protocol(as_str(item.get("protocol", "tcp"), loc.key("protocol")), loc.key("protocol"))
    host_ip = as_str(item.get("host_ip", ""), loc.key("host_ip"))
    if host_ip:
        host_ip = _ip(host_ip, loc.key("host_ip"), host_ip)
    mode = item.get("mode", "host")
    if mode not in ("host", "ingress"):
        raise loc.key("mode").error(f"must be 'host' or 'ingress', not {mode!r}")
    for key in ("name", "app_protocol"):
        if key in item:
            as_str(item[key], loc.key(key))
    return [PortSpec(container_port=target, host_port=published, protocol=protocol, host_ip=host_ip)]


def _range(text: str, loc: Loc, original: str) -> tuple[int, int]:
    match = _PORT_RANGE.fullmatch(text.strip())
    if match is None:
        raise loc.error(f"invalid port {original!r}: {text!r} is not a port number or range")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else start
    for port in (start, end):
        if not 1 <= port <= 65535:
            raise loc.error(f"invalid port {original!r}: {port} is outside 1-65535")
    if end < start:
        raise loc.error(f"invalid port {original!r}: range {start}-{end} runs backwards")
    if end - start >= MAX_RANGE:
        raise loc.error(f"invalid port {original!r}: ranges are limited to {MAX_RANGE} ports")
    return start, end


def _protocol(text: str, loc: Loc) -> Protocol:
    lowered = text.strip().lower()
    if lowered == "tcp":
        return "tcp"
    if lowered == "udp":
        return "udp"
    raise loc.error(f"protocol {text!r} is not supported (use tcp or udp)")


def _ip(text: str, loc: Loc, original: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise loc.error(f"invalid port {original!r}: {text!r} is not an IP address") from None
