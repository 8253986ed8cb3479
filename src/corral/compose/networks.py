"""Compose `networks:`: a stack's networks become segments of the environment's overlay (issue 17 item 5).

Why names only: every container keeps one address on the environment's overlay (Corral's IPAM); a network is the
set of containers that may reach each other, enforced by each host's filter (network/segments.py). A network is
named `<stack>_<key>` (scoped to the stack as Compose scopes it to the project), by its `name:`, or, `external`,
by the name as written (shared with the stacks that name it). A stack that declares no networks and whose
services name none stays on the environment's flat network, as in Rancher: it reaches and is reached by every
container. Otherwise a service without `networks:` is on the stack's `default` network, as in Compose.
"""

from __future__ import annotations

import re
from typing import Any

from corral.compose.location import Loc
from corral.compose.values import as_bool, as_str, kind, mapping, str_list

_ALIAS = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_TOP_KEYS = frozenset({
    "driver", "driver_opts", "external", "internal", "name", "attachable", "labels", "ipam", "enable_ipv4",
    "enable_ipv6",
})  # fmt: skip
_SERVICE_KEYS = frozenset({
    "aliases", "ipv4_address", "ipv6_address", "link_local_ips", "priority", "gw_priority", "mac_address",
    "driver_opts", "interface_name",
})  # fmt: skip


def declared_networks(
    value: Any, loc: Loc, warnings: list[str], *, stack_name: str, internal: set[str] | None = None
) -> dict[str, str]:
    """Top-level networks: key -> the network's name; options that change nothing here are warned. The names of
    `internal: true` networks are added to `internal` (their containers reach nothing outside the overlay)."""
    names: dict[str, str] = {}
    for key, conf in mapping(value, loc).items():
        where = loc.key(key)
        options = mapping(conf, where)
        for option in options:
            if option not in _TOP_KEYS:
                raise where.key(option).error(f"unknown network key {option!r} (known: {', '.join(sorted(_TOP_KEYS))})")
        driver = options.get("driver")
        if driver not in (None, "", "bridge", "overlay"):
            warnings.append(
                f"{loc.file}: network {key}: driver {as_str(driver, where.key('driver'))!r} is not supported; the "
                "network is a segment of the environment's overlay"
            )
        is_internal = options.get("internal") is not None and as_bool(options["internal"], where.key("internal"))
        for option in ("driver_opts", "ipam", "labels", "enable_ipv6"):
            if options.get(option):
                warnings.append(f"{loc.file}: network {key}: key {option!r} is not supported yet and was ignored")
        names[key] = f"{stack_name}_{key}" if stack_name else key
        external = options.get("external")
        if isinstance(external, dict):
            names[key] = as_str(mapping(external, where.key("external")).get("name", key), where.key("external"))
        elif external is not None and as_bool(external, where.key("external")):
            names[key] = key
        if options.get("name") is not None:
            names[key] = as_str(options["name"], where.key("name"))
        if is_internal and internal is not None:
            internal.add(names[key])
    return names


def service_networks(
    value: Any, loc: Loc, warnings: list[str], *, declared: dict[str, str], stack_name: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """A service's `networks:` (list or mapping) as network names, and its `aliases` as (network, alias): names
    its containers have for the containers on that network. Each network must be declared (`default` always is)."""
    if not value:  # absent or empty: the stack's default network
        return (f"{stack_name}_default" if stack_name else "default",), ()
    if isinstance(value, dict):
        entries = mapping(value, loc)
    elif isinstance(value, list):
        entries = dict.fromkeys(str_list(value, loc))
    else:
        raise loc.error(f"must be a list of network names or a mapping, not {kind(value)}")
    names: list[str] = []
    aliases: set[tuple[str, str]] = set()
    for key, options in entries.items():
        where = loc.key(key)
        if key not in declared and key != "default":
            raise where.error(f"network {key!r} is not declared: add it under the top-level 'networks:' key")
        network = declared.get(key, f"{stack_name}_default" if stack_name else "default")
        for option, setting in mapping(options, where).items():
            if option == "aliases":
                for i, alias in enumerate(str_list(setting, where.key(option))):
                    if not _ALIAS.fullmatch(alias):
                        raise where.key(option).key(i).error(f"{alias!r} is not a valid DNS name")
                    aliases.add((network, alias.lower()))
                continue
            if option not in _SERVICE_KEYS:
                raise where.key(option).error(f"unknown key {option!r} (known: {', '.join(sorted(_SERVICE_KEYS))})")
            if setting not in (None, "", [], {}):
                what = "Corral's IPAM gives each container its address" if "address" in option else "not supported yet"
                warnings.append(f"{where.key(option).prefix()}: ignored ({what})")
        names.append(network)
    return tuple(sorted(set(names))), tuple(sorted(aliases))
