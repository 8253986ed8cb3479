"""`volumes` entries of a service, short and long syntax, into `VolumeSpec`s; and its `volumes_from` entries.

Why relative host paths need `base_dir`: "./data" means "next to the compose file", which only the CLI knows. A
file uploaded through the API has no directory: there a relative source is kept as written and compose/files.py
mounts the copy `corral up` uploaded with the stack (or refuses it). Home-relative paths ("~/x") are rejected:
whose home?
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from corral.compose.location import Loc, Reference
from corral.compose.values import as_bool, as_str, kind, mapping, sequence, str_list
from corral.model.stack import VolumeScope, VolumeSpec

_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_IGNORED_MODES = {
    "z", "Z", "nocopy", "cached", "delegated", "consistent",
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
}  # fmt: skip
_FROM_MODES = ("ro", "rw")
_LONG_KEYS = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency", "image"}
_IGNORED_TYPES = {"tmpfs", "npipe", "cluster", "image"}


def parse_volumes(
    value: Any,
    loc: Loc,
    warnings: list[str],
    *,
    base_dir: str | None,
    volume_names: Mapping[str, str] | None,
    volume_scopes: Mapping[str, VolumeScope] | None = None,
) -> tuple[VolumeSpec, ...]:
    """`volume_names` maps a volume declared at the top level to its Docker name; a named volume not declared there
    is refused, as Compose does (None: a version 1 file, where names are used as written)."""
    specs: list[VolumeSpec] = []
    targets: dict[str, int] = {}
    for i, item in enumerate(sequence(value, loc)):
        entry = loc.key(i)
        if isinstance(item, dict):
            spec = _long(item, entry, warnings, base_dir)
        elif isinstance(item, str):
            spec = _short(item, entry, warnings, base_dir)
        else:
            raise entry.error(f"must be a string like 'data:/path' or a mapping, not {kind(item)}")
        if spec is None:
            continue
        if spec.kind == "volume" and volume_names is not None:
            if spec.source not in volume_names:
                raise entry.error(
                    f"volume {spec.source!r} is not declared: add it under the top-level 'volumes:' key "
                    f"(or use a path starting with '/' or '.' for a bind mount)"
                )
            spec = VolumeSpec(
                kind="volume",
                target=spec.target,
                source=volume_names[spec.source],
                read_only=spec.read_only,
                scope=(volume_scopes or {}).get(spec.source, ""),
            )
        if spec.target in targets:
            raise entry.error(f"target {spec.target!r} is already mounted by volumes[{targets[spec.target]}]")
        targets[spec.target] = i
        specs.append(spec)
    return tuple(specs)


def _short(text: str, loc: Loc, warnings: list[str], base_dir: str | None) -> VolumeSpec:
    parts = text.split(":")
    if len(parts) > 3:
        raise loc.error(f"invalid volume {text!r}: expected [SOURCE:]TARGET[:MODE]")
    if len(parts) == 1:
        target = _target(parts[0], loc, text)
        return VolumeSpec(kind="anonymous", target=target)
    source, target = parts[0], _target(parts[1], loc, text)
    read_only = False
    if len(parts) == 3:
        modes = parts[2].split(",")
        for mode in modes:
            if mode not in ("ro", "rw") and mode not in _IGNORED_MODES:
                raise loc.error(f"invalid volume {text!r}: unknown mode {mode!r} (use ro or rw)")
            if mode in _IGNORED_MODES:
                warnings.append(f"{loc.prefix()}: volume mode {mode!r} is not supported yet and was ignored")
        if "ro" in modes and "rw" in modes:
            raise loc.error(f"invalid volume {text!r}: both ro and rw")
        read_only = "ro" in modes
    return _sourced(source, target, read_only, loc, text, base_dir)


def _long(item: dict[str, Any], loc: Loc, warnings: list[str], base_dir: str | None) -> VolumeSpec | None:
    item = mapping(item, loc)
    for key in item:
        if key not in _LONG_KEYS:
            raise loc.key(key).error(f"unknown volume key {key!r} (known: {', '.join(sorted(_LONG_KEYS))})")
    if "target" not in item:
        raise loc.error("a volume mapping needs 'target' (the path in the container)")
    target = _target(as_str(item["target"], loc.key("target")), loc.key("target"), str(item["target"]))
    source = as_str(item["source"], loc.key("source")) if item.get("source") is not None else ""
    read_only = as_bool(item.get("read_only", False), loc.key("read_only"))
    kind_ = as_str(item["type"], loc.key("type")) if "type" in item else ""
    if kind_ in _IGNORED_TYPES:
        warnings.append(f"{loc.prefix()}: volume type {kind_!r} is not supported yet and was ignored")
        return None
    if kind_ not in ("", "volume", "bind"):
        raise loc.key("type").error(f"unknown volume type {kind_!r} (use volume or bind)")
    for key in ("bind", "volume", "tmpfs"):
        if mapping(item.get(key), loc.key(key)):
            warnings.append(f"{loc.prefix()}: {key} options are not supported yet and were ignored")
    if kind_ == "bind" and not source:
        raise loc.key("source").error("a bind mount needs a source path")
    if kind_ == "volume" and source.startswith(("/", ".", "~")):
        raise loc.key("source").error(f"{source!r} is a path: use type 'bind' for host paths")
    if kind_ == "bind" and not source.startswith(("/", ".", "~")):
        raise loc.key("source").error(f"{source!r} is not a host path (absolute, or relative starting with '.')")
    if not source:
        return VolumeSpec(kind="anonymous", target=target, read_only=read_only)
    return _sourced(source, target, read_only, loc.key("source"), source, base_dir)


def _sourced(source: str, target: str, read_only: bool, loc: Loc, text: str, base_dir: str | None) -> VolumeSpec:
    if not source:
        raise loc.error(f"invalid volume {text!r}: the source is empty")
    if source.startswith("~"):
        raise loc.error(f"invalid volume {text!r}: home-relative paths are not supported; use an absolute path")
    if source.startswith("/"):
        return VolumeSpec(kind="bind", target=target, source=posixpath.normpath(source), read_only=read_only)
    if source.startswith("."):
        if base_dir is None:  # uploaded with the stack, or refused (compose/files.py)
            return VolumeSpec(kind="bind", target=target, source=source, read_only=read_only)
        full = posixpath.normpath(posixpath.join(base_dir, source))
        return VolumeSpec(kind="bind", target=target, source=full, read_only=read_only)
    if not _VOLUME_NAME.fullmatch(source):
        raise loc.error(
            f"invalid volume {text!r}: {source!r} is not a volume name (letters, digits, '_', '.', '-'; at least "
            "2 characters) nor a path"
        )
    return VolumeSpec(kind="volume", target=target, source=source, read_only=read_only)


def _target(target: str, loc: Loc, text: str) -> str:
    if not target.startswith("/"):
        raise loc.error(f"invalid volume {text!r}: the container path {target!r} must be absolute")
    return posixpath.normpath(target)


def parse_volumes_from(value: object, loc: Loc) -> tuple[tuple[str, ...], tuple[Reference, ...]]:
    """Compose `volumes_from` entries, normalised (`SERVICE`, `SERVICE:ro`, `container:NAME[:ro]`), and the
    services they name (checked against the file later)."""
    entries: list[str] = []
    refs: list[Reference] = []
    for i, entry in enumerate(str_list(value, loc)):
        where = loc.key(i)
        parts = entry.strip().split(":")
        external = parts[0] == "container"
        if external:
            parts = parts[1:]
        if not parts or not parts[0] or len(parts) > 2 or (len(parts) == 2 and parts[1] not in _FROM_MODES):
            raise where.error(f"{entry!r} must be SERVICE[:ro|:rw] or container:NAME[:ro|:rw]")
        mode = ":ro" if len(parts) == 2 and parts[1] == "ro" else ""
        if external:
            entries.append(f"container:{parts[0]}{mode}")
        else:
            entries.append(f"{parts[0]}{mode}")
            refs.append((parts[0], where, "volumes_from"))
    return tuple(dict.fromkeys(entries)), tuple(refs)
