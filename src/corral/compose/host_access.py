"""The compose keys that hand a container part of its host beyond its network: `pid`, `ipc` and `devices`.

Why kept (not dropped with a warning): dropping them silently changes what a service is (a monitoring agent that
needs the host's processes would run blind), and keeping them lets the environment's container policy
(model/policy.py) refuse or allow them like `privileged`. Only values Docker accepts from any host are taken:
`pid: host`, `ipc: host|private|shareable|none`, and devices as `HOST[:CONTAINER[:PERMISSIONS]]`. References to
other containers (`service:NAME`, `container:NAME`) are refused with a reason: Corral names containers itself and
places them on any host, so such a reference would not mean what it says.
"""

from __future__ import annotations

import posixpath
from typing import Any

from corral.compose.location import Loc
from corral.compose.values import as_str, str_list

PID_MODES = ("host",)
IPC_MODES = ("host", "private", "shareable", "none")
DEVICE_PERMISSIONS = frozenset("rwm")


def _mode(value: Any, loc: Loc, allowed: tuple[str, ...]) -> str:
    if value is None:
        return ""
    text = as_str(value, loc).strip()
    if text in allowed or text == "":
        return text
    known = ", ".join(allowed)
    if text.startswith(("service:", "container:")):
        raise loc.error(f"{text!r} is not supported: Corral names and places containers itself (use one of: {known})")
    raise loc.error(f"{text!r} is not a valid mode (known: {known})")


def parse_pid(value: Any, loc: Loc) -> str:
    """`pid:`: "" (the container's own namespace) or `host`."""
    return _mode(value, loc, PID_MODES)


def parse_ipc(value: Any, loc: Loc) -> str:
    """`ipc:`: "" (Docker's default), `host`, `private`, `shareable` or `none`."""
    return _mode(value, loc, IPC_MODES)


def parse_devices(value: Any, loc: Loc) -> tuple[str, ...]:
    """`devices:` as Docker's canonical `HOST:CONTAINER:PERMISSIONS` strings (container path defaults to the host
    path, permissions to `rwm`)."""
    if value is None:
        return ()
    devices: list[str] = []
    for i, item in enumerate(str_list(value, loc)):
        where = loc.key(i)
        parts = item.split(":")
        if len(parts) > 3 or not parts[0]:
            raise where.error(f"{item!r} is not HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]")
        host = parts[0]
        container = parts[1] if len(parts) > 1 and parts[1] else host
        permissions = parts[2] if len(parts) > 2 else "rwm"
        for path in (host, container):
            if not posixpath.isabs(path):
                raise where.error(f"{item!r}: device path {path!r} must be absolute")
        if not permissions or not set(permissions) <= DEVICE_PERMISSIONS or len(set(permissions)) != len(permissions):
            raise where.error(f"{item!r}: permissions {permissions!r} must be letters of 'rwm', each once")
        devices.append(f"{host}:{container}:{permissions}")
    return tuple(devices)
