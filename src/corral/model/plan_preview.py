"""The answer of `corral up --plan`: what an `up` would create, change and remove, and the fields that change.

Why in the vocabulary: the orchestrator's preview (orchestrator/preview.py) builds it, the API returns it as JSON,
the CLI and the UI print it; one shape and one field diff keep the three equal. Secrets never appear: a secret
mount shows its name and path, a config or uploaded file its digest, and an environment variable whose name looks
like a credential its name only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from corral.model.stack import ServiceSpec

ServiceAction = Literal["create", "change", "remove", "unchanged"]
ContainerAction = Literal["create", "recreate", "remove"]
HIDDEN = "(hidden)"
# names of environment variables whose values are credentials: shown by name only
_SENSITIVE = re.compile(r"(?i)pass|secret|token|key|credential|private|auth")


@dataclass(frozen=True)
class FieldChange:
    field: str  # dotted path: "scale", "launch.image", "launch.environment.LOG_LEVEL"
    old: str | None  # None: absent before
    new: str | None  # None: absent after


@dataclass(frozen=True)
class ServicePreview:
    name: str
    action: ServiceAction
    changes: tuple[FieldChange, ...] = ()
    note: str = ""  # e.g. "rolling upgrade, 2 at a time", "waits for dependencies: db"


@dataclass(frozen=True)
class ContainerPreview:
    action: ContainerAction
    service: str
    index: int
    host_id: str  # where it runs after the change (for remove: where it runs now)
    host: str
    from_host: str = ""  # a recreate on another host: where the old container runs
    reason: str = ""


@dataclass(frozen=True)
class UnplacedPreview:
    service: str
    indexes: tuple[int, ...]
    reason: str  # grouped per reason: "#3-#6: port 80/tcp is taken on all 4 active hosts" (model/reasons.py)


@dataclass(frozen=True)
class StackPreview:
    stack: str
    environment: str
    create: bool  # the stack does not exist yet
    services: tuple[ServicePreview, ...]
    containers: tuple[ContainerPreview, ...]
    unplaced: tuple[UnplacedPreview, ...]
    warnings: tuple[str, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return self.create or any(s.action != "unchanged" for s in self.services) or bool(self.containers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "environment": self.environment,
            "create": self.create,
            "changes": self.changes_anything,
            "services": [
                {
                    "name": s.name,
                    "action": s.action,
                    "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in s.changes],
                    "note": s.note,
                }
                for s in self.services
            ],
            "containers": [
                {
                    "action": c.action,
                    "service": c.service,
                    "index": c.index,
                    "name": f"{self.stack}-{c.service}-{c.index}",
                    "host_id": c.host_id,
                    "host": c.host,
                    "from_host": c.from_host,
                    "reason": c.reason,
                }
                for c in self.containers
            ],
            "unplaced": [{"service": u.service, "indexes": list(u.indexes), "reason": u.reason} for u in self.unplaced],
            "warnings": list(self.warnings),
        }


def spec_changes(old: ServiceSpec, old_scale: int, new: ServiceSpec) -> tuple[FieldChange, ...]:
    """The fields that differ between two specs of a service (and its scale), sorted by path."""
    before = _flatten(old.to_dict())
    after = _flatten(new.to_dict())
    before["scale"], after["scale"] = str(old_scale), str(new.scale)
    changes = [
        FieldChange(path, _shown(path, before.get(path)), _shown(path, after.get(path)))
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]
    return tuple(changes)


def _shown(path: str, value: str | None) -> str | None:
    """A value as the preview may show it: an environment variable named like a credential by its name only."""
    env, _, name = path.partition("launch.environment.")
    if value is not None and not env and _SENSITIVE.search(name):
        return HIDDEN
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in ("scale", "name"):
            continue
        if path in ("launch.environment", "launch.labels"):
            flat.update({f"{path}.{k}": str(v) for k, v in value})
        elif path == "launch.files":
            flat.update({f"{path}.{f['target']}": _file(f) for f in value})
        elif path == "launch.ports":
            flat[path] = ", ".join(_port(p) for p in value)
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, f"{path}."))
        elif value is None or value == [] or value == {} or value == "":
            flat[path] = "" if value == "" else json.dumps(value)
        else:
            flat[path] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return flat


def _file(mount: Mapping[str, Any]) -> str:
    """A mounted file by name: a secret's value is never in a spec, a config's bytes show as their digest."""
    if mount["kind"] == "secret":
        return f"secret {mount['source']}"
    digest = hashlib.sha256(str(mount.get("content", "")).encode()).hexdigest()[:12]
    return f"{mount['kind']} {mount['source']} (sha256 {digest})"


def _port(port: Mapping[str, Any]) -> str:
    host = port.get("host_port")
    where = f"{port['host_ip']}:" if port.get("host_ip") else ""
    published = f"{where}{host}:" if host is not None else ""
    return f"{published}{port['container_port']}/{port.get('protocol', 'tcp')}"
