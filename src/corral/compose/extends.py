"""`extends` and `profiles`: which raw service mappings a compose file really defines, before any is parsed.

Why on raw mappings: Compose resolves both on the YAML model (after interpolation, before validation), so a service
that extends another is validated as the merged mapping, with the same merge rules Compose applies: mappings merge
key by key, `environment`/`labels`-style collections merge by variable, lists of ports and capabilities add up, and
`volumes` replace by target. A service disabled by `profiles` is absent, as in `docker compose config`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from corral.compose.location import Loc
from corral.compose.values import as_str, kind, mapping, scalar_text, sequence

# Collections written as a list of K=V or a mapping: merged by key.
_KEY_VALUE = frozenset({"environment", "labels", "sysctls", "annotations", "build_args"})
# Lists whose entries add up (duplicates dropped), as Compose's merge does.
_ADDITIVE = frozenset({
    "ports", "expose", "cap_add", "cap_drop", "dns", "dns_search", "dns_opt", "env_file", "external_links",
    "group_add", "security_opt", "tmpfs", "devices", "volumes_from", "links", "profiles", "extra_hosts",
})  # fmt: skip
MAX_EXTENDS_DEPTH = 16
ReadFile = Callable[[str, Loc], str]
LoadFile = Callable[[str, str], dict[str, Any]]  # (file name, text) -> the services mapping of that file


def active_services(raw: Mapping[str, Any], profiles: frozenset[str], loc: Loc) -> tuple[dict[str, Any], set[str]]:
    """The services enabled by `profiles` ("*" enables all), and the names left out."""
    enabled: dict[str, Any] = {}
    disabled: set[str] = set()
    for name, body in raw.items():
        wanted = service_profiles(body, loc.in_service(name))
        if not wanted or "*" in profiles or profiles & wanted:
            enabled[name] = body
        else:
            disabled.add(name)
    return enabled, disabled


def service_profiles(body: Any, loc: Loc) -> frozenset[str]:
    if not isinstance(body, dict) or body.get("profiles") is None:
        return frozenset()
    return frozenset(as_str(p, loc.key("profiles").key(i)) for i, p in enumerate(sequence(body["profiles"], loc)))


def resolve_extends(
    raw: Mapping[str, Any], loc: Loc, *, read_file: ReadFile | None, load_file: LoadFile
) -> dict[str, Any]:
    """Every service with its `extends` merged in (recursively, in this file or another one)."""
    resolved: dict[str, Any] = {}
    for name in raw:
        resolved[name] = _resolve(name, raw, loc, (), read_file=read_file, load_file=load_file)
    return resolved


def _resolve(
    name: str,
    raw: Mapping[str, Any],
    loc: Loc,
    chain: tuple[tuple[str, str], ...],
    *,
    read_file: ReadFile | None,
    load_file: LoadFile,
) -> Any:
    where = loc.in_service(name)
    body = raw[name]
    if not isinstance(body, dict) or "extends" not in body:
        return body
    link = (loc.file, name)
    if link in chain:
        path = " -> ".join(service for _, service in (*chain, link))
        raise where.key("extends").error(f"extends cycle: {path}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise where.key("extends").error(f"extends is nested more than {MAX_EXTENDS_DEPTH} levels deep")
    ext_loc = where.key("extends")
    ext = body["extends"]
    if isinstance(ext, str):
        base_name, file_name = ext, None
    else:
        options = mapping(ext, ext_loc, null_ok=False)
        for key in options:
            if key not in ("service", "file"):
                raise ext_loc.key(key).error(f"unknown extends key {key!r} (known: file, service)")
        if options.get("service") is None:
            raise ext_loc.key("service").error("is required (the service to extend)")
        base_name = scalar_text(options["service"], ext_loc.key("service"))
        file_name = as_str(options["file"], ext_loc.key("file")) if options.get("file") is not None else None
    base_raw, base_loc = raw, loc
    if file_name is not None:
        if read_file is None:
            raise ext_loc.key("file").error(
                f"extends file {file_name!r} was not provided (upload it with the compose file)"
            )
        text = read_file(file_name, ext_loc.key("file"))
        shown = posixpath.normpath(posixpath.join(posixpath.dirname(loc.file), file_name))
        base_raw, base_loc = load_file(shown, text), Loc(shown, ("services",))
    if base_name not in base_raw:
        raise ext_loc.key("service").error(
            f"extends names service {base_name!r}, which is not defined in {base_loc.file}"
        )
    base = _resolve(base_name, base_raw, base_loc, (*chain, link), read_file=read_file, load_file=load_file)
    base_map = mapping(base, base_loc.in_service(base_name), null_ok=False)
    own = {k: v for k, v in body.items() if k != "extends"}
    return merge_service(base_map, own, where)


def merge_service(base: Mapping[str, Any], override: Mapping[str, Any], loc: Loc) -> dict[str, Any]:
    """Compose's merge of two service mappings (the override wins)."""
    merged = dict(base)
    for key, value in override.items():
        if key not in merged or merged[key] is None or value is None:
            merged[key] = value
        elif key in _KEY_VALUE:
            merged[key] = {**_as_map(merged[key], loc.key(key)), **_as_map(value, loc.key(key))}
        elif key in _ADDITIVE and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *(v for v in value if v not in merged[key])]
        elif key == "volumes" and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = _merge_volumes(merged[key], value)
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_dicts(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def _as_map(value: Any, loc: Loc) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        result: dict[str, Any] = {}
        for i, item in enumerate(value):
            key, sep, val = as_str(item, loc.key(i), numbers=True).partition("=")
            result[key] = val if sep else None
        return result
    raise loc.error(f"must be a list of KEY=VALUE strings or a mapping, not {kind(value)}")


def _volume_target(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("target")
    if isinstance(entry, str):
        parts = entry.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return entry


def _merge_volumes(base: list[Any], override: list[Any]) -> list[Any]:
    targets = {_volume_target(v) for v in override}
    return [*(v for v in base if _volume_target(v) not in targets), *override]
