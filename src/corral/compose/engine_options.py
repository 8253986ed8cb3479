"""Engine options Compose hands to Docker as they are: `init`, `read_only`, `shm_size`, `stop_signal`,
`extra_hosts`, `tmpfs`, `ulimits`, read into `LaunchConfig` fields with Compose's accepted spellings.

Why a module of their own: each is a plain pass-through with its own syntax (ulimits as a number or soft/hard,
extra_hosts as a list or a mapping, with `:` or `=`), and none of them reaches the host, so no policy rule applies
(options that can, like `sysctls` or `security_opt`, stay warned until model/policy.py checks them).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from corral.compose.location import Loc
from corral.compose.values import as_bool, as_int, as_str, kind, mapping, memory_bytes, scalar_text, str_list

ENGINE_KEYS = frozenset({"init", "read_only", "shm_size", "stop_signal", "extra_hosts", "tmpfs", "ulimits"})
_SIGNAL = re.compile(r"(SIG)?[A-Z][A-Z0-9+-]*|[0-9]{1,2}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_ULIMIT = re.compile(r"[a-z]+")


def engine_options(body: dict[str, Any], loc: Loc) -> dict[str, Any]:
    """The LaunchConfig fields for the engine options `body` sets (absent ones left out)."""
    out: dict[str, Any] = {}
    if body.get("init") is not None:
        out["init"] = as_bool(body["init"], loc.key("init"))
    if body.get("read_only") is not None:
        out["read_only"] = as_bool(body["read_only"], loc.key("read_only"))
    if body.get("shm_size") is not None:
        out["shm_size_bytes"] = memory_bytes(body["shm_size"], loc.key("shm_size"))
    if body.get("stop_signal") is not None:
        signal = as_str(body["stop_signal"], loc.key("stop_signal"), numbers=True).strip()
        if not _SIGNAL.fullmatch(signal):
            raise loc.key("stop_signal").error(f"{signal!r} is not a signal (e.g. SIGTERM, SIGQUIT or 15)")
        out["stop_signal"] = signal
    if body.get("extra_hosts") is not None:
        out["extra_hosts"] = _extra_hosts(body["extra_hosts"], loc.key("extra_hosts"))
    if body.get("tmpfs") is not None:
        value = body["tmpfs"]
        paths = (value,) if isinstance(value, str) else str_list(value, loc.key("tmpfs"))
        for i, path in enumerate(paths):
            if not path.startswith("/"):
                raise loc.key("tmpfs").key(i).error(f"{path!r} must be an absolute path in the container")
        out["tmpfs"] = tuple(paths)
    if body.get("ulimits") is not None:
        out["ulimits"] = _ulimits(body["ulimits"], loc.key("ulimits"))
    return out


def _extra_hosts(value: Any, loc: Loc) -> tuple[str, ...]:
    """A list of `HOST:IP` or `HOST=IP`, or a mapping {HOST: IP}; as `HOST:IP` (Docker's form)."""
    pairs: list[tuple[str, str, Loc]] = []
    if isinstance(value, dict):
        for host, address in mapping(value, loc).items():
            pairs.append((host, scalar_text(address, loc.key(host)), loc.key(host)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            text = as_str(item, loc.key(i))
            sep = "=" if "=" in text else ":"
            host, _, address = text.partition(sep)
            pairs.append((host, address, loc.key(i)))
    else:
        raise loc.error(f"must be a list of HOST:IP strings or a mapping, not {kind(value)}")
    hosts = []
    for host, address, where in pairs:
        address = address.strip("[]")
        if not _HOST.fullmatch(host):
            raise where.error(f"{host!r} is not a host name")
        if address != "host-gateway":
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise where.error(f"{address!r} is not an IP address (or host-gateway)") from None
        hosts.append(f"{host}:{address}")
    return tuple(hosts)


def _ulimits(value: Any, loc: Loc) -> tuple[tuple[str, int, int], ...]:
    limits = []
    for name, limit in sorted(mapping(value, loc).items()):
        where = loc.key(name)
        if not _ULIMIT.fullmatch(name):
            raise where.error(f"{name!r} is not a ulimit name (e.g. nofile, nproc, memlock)")
        if isinstance(limit, dict):
            options = mapping(limit, where)
            for key in options:
                if key not in ("soft", "hard"):
                    raise where.key(key).error(f"unknown ulimit key {key!r} (known: hard, soft)")
            if options.get("soft") is None or options.get("hard") is None:
                raise where.error("needs both soft and hard (or one number for both)")
            soft = as_int(options["soft"], where.key("soft"), low=-1)
            hard = as_int(options["hard"], where.key("hard"), low=-1)
            if hard != -1 and (soft == -1 or soft > hard):
                raise where.error(f"soft limit {soft} is above the hard limit {hard}")
        else:
            soft = hard = as_int(limit, where, low=-1)
        limits.append((name, soft, hard))
    return tuple(limits)
