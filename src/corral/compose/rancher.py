"""One rancher-compose.yml service entry: scale, start_on_create, health_check, upgrade_strategy, retain_ip, metadata,
the scheduler reservations (mem_reservation, milli_cpu_reservation) and a load balancer's lb_config (kept as written
for compose/lb_config.py).

Why separate from docker-compose parsing: rancher-compose.yml only adds Rancher's service-level settings to
services defined in docker-compose.yml, with its own key set (and its own units: health check times are in
milliseconds). Dicts are kept as plain JSON-able data for the later health, upgrade and metadata issues; numbers
written through `${VAR}` arrive as strings and are turned back into ints here.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from corral.compose.location import Loc
from corral.compose.service import MAX_SCALE, reservations
from corral.compose.values import as_bool, as_int, kind, mapping, scalar_text
from corral.model.errors import InvalidInput
from corral.model.health import check_rancher_health_check

SUPPORTED_KEYS = frozenset({
    "scale", "start_on_create", "health_check", "upgrade_strategy", "retain_ip", "metadata", "mem_reservation",
    "milli_cpu_reservation", "lb_config", "external_ips", "hostname",
})  # fmt: skip
IGNORED_KEYS = frozenset({
    "load_balancer_config", "scale_policy", "drain_timeout_ms",
    "storage_driver", "network_driver", "certs", "default_cert", "service_schemas", "type",
})  # fmt: skip
_HEALTH_INTS = {
    "port": (1, 65535),
    "interval": (0, None),
    "response_timeout": (0, None),
    "healthy_threshold": (0, None),
    "unhealthy_threshold": (0, None),
    "initializing_timeout": (0, None),
    "reinitializing_timeout": (0, None),
}
_UPGRADE_INTS = {"batch_size": 1, "interval_millis": 0}


@dataclass(frozen=True)
class RancherService:
    scale: int | None = None
    start_on_create: bool | None = None
    health_check: dict[str, Any] | None = None
    upgrade_strategy: dict[str, Any] | None = None
    retain_ip: bool | None = None
    metadata: dict[str, Any] | None = None
    mem_reservation_bytes: int | None = None
    cpu_reservation: float | None = None
    lb_config: Any = None  # as written: compose/lb_config.py reads it with the service's labels and ports
    external_ips: Any = None  # as written: compose/virtual_service.py reads them with the service's image
    hostname: Any = None


def parse_rancher_service(raw: Any, loc: Loc, warnings: list[str]) -> RancherService:
    body = mapping(raw, loc)
    for key in body:
        if key.startswith("x-"):
            continue
        if key in IGNORED_KEYS:
            warnings.append(f"{loc.service_prefix()}: key {key!r} is not supported yet and was ignored")
        elif key not in SUPPORTED_KEYS:
            close = difflib.get_close_matches(key, sorted(SUPPORTED_KEYS | IGNORED_KEYS), n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise loc.key(key).error(f"unknown rancher-compose key {key!r}{hint}")
    mem_reservation, cpu_reservation = reservations(body, loc)
    return RancherService(
        scale=_optional(body, "scale", loc, lambda v, at: as_int(v, at, low=0, high=MAX_SCALE)),
        start_on_create=_optional(body, "start_on_create", loc, as_bool),
        health_check=_health_check(body.get("health_check"), loc.key("health_check"), warnings),
        upgrade_strategy=_upgrade_strategy(body.get("upgrade_strategy"), loc.key("upgrade_strategy")),
        retain_ip=_optional(body, "retain_ip", loc, as_bool),
        metadata=_free_mapping(body["metadata"], loc.key("metadata")) if "metadata" in body else None,
        mem_reservation_bytes=mem_reservation,
        cpu_reservation=cpu_reservation,
        lb_config=body.get("lb_config"),
        external_ips=body.get("external_ips"),
        hostname=body.get("hostname"),
    )


def _optional(body: dict[str, Any], key: str, loc: Loc, read: Any) -> Any:
    return read(body[key], loc.key(key)) if body.get(key) is not None else None


def _health_check(value: Any, loc: Loc, warnings: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    check = _free_mapping(value, loc)
    request_line = check.get("request_line")
    if isinstance(request_line, str) and '"' in request_line:
        # HAProxy's quoting (`GET "/health" "HTTP/1.0"`), which Rancher 1.6 passed through to its HAProxy checks
        unquoted = " ".join(word.strip('"') for word in request_line.split())
        warnings.append(f"{loc.key('request_line').prefix()}: quotes removed: {request_line!r} read as {unquoted!r}")
        check["request_line"] = unquoted
    for key, (low, high) in _HEALTH_INTS.items():
        if check.get(key) is not None:
            check[key] = as_int(check[key], loc.key(key), low=low, high=high)
    quorum_config = check.get("recreate_on_quorum_strategy_config")
    if isinstance(quorum_config, dict) and quorum_config.get("quorum") is not None:
        at = loc.key("recreate_on_quorum_strategy_config").key("quorum")
        quorum_config["quorum"] = as_int(quorum_config["quorum"], at, low=1)
    try:
        check_rancher_health_check(check)
    except InvalidInput as exc:
        at = loc
        for part in (exc.field or "").split("."):
            at = at.key(part) if part else at
        raise at.error(exc.message) from exc
    return check


def _upgrade_strategy(value: Any, loc: Loc) -> dict[str, Any] | None:
    if value is None:
        return None
    strategy = _free_mapping(value, loc)
    if strategy.get("start_first") is not None:
        strategy["start_first"] = as_bool(strategy["start_first"], loc.key("start_first"))
    for key, low in _UPGRADE_INTS.items():
        if strategy.get(key) is not None:
            strategy[key] = as_int(strategy[key], loc.key(key), low=low)
    return strategy


def _free_mapping(value: Any, loc: Loc) -> dict[str, Any]:
    """A free-form mapping (any scalar keys, turned into strings) as plain JSON-able data."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise loc.error(f"must be a mapping, not {kind(value)}")
    result: dict[str, Any] = plain(value, loc)
    return result


def plain(value: Any, loc: Loc) -> Any:
    """Plain JSON-able data: string keys, ints and floats without their YAML source text, finite numbers."""
    if isinstance(value, dict):
        return {scalar_text(k, loc): plain(v, loc.key(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, loc.key(i)) for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise loc.error("infinite and NaN numbers are not allowed")
        return float(value)
    raise loc.error(f"unsupported value {value!r}")
