"""Files Corral mounts into a container: environment secrets, compose configs and relative bind mounts.

Why one shape for the three: each is a small file the agent writes on the container's host and bind-mounts
read-only at a path in the container, wherever the container runs. They differ in where the bytes live:
- a **secret** (`kind="secret"`) names an environment secret; the launch config holds only its name (the value is
  sealed in the server's store and travels to an agent only with the `desired` set of a host running a container
  that names it); the agent keeps it on tmpfs, under `/run/secrets/NAME` by default;
- a **config** or an uploaded **bind** file (`kind="config"`, `"bind"`) carries its bytes (base64) in the launch
  config, so a change of content changes the config hash and an upgrade replaces the containers.

Limits: a secret holds at most MAX_SECRET_BYTES (Docker's limit); uploads at most MAX_UPLOAD_FILE_BYTES per file,
MAX_UPLOAD_FILES files and MAX_UPLOAD_BYTES in all per stack: larger data belongs in a volume.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal

from corral.model.errors import InvalidInput

FileKind = Literal["secret", "config", "bind"]
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_SECRET_BYTES = 500 * 1024
MAX_UPLOAD_FILE_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 1024 * 1024
MAX_UPLOAD_FILES = 64
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class FileMount:
    kind: FileKind
    source: str  # the secret's stored name, the config's name, or the bind's relative path in the project
    target: str  # absolute path in the container
    content: str = ""  # base64 of the bytes (configs and binds; never a secret's value)
    uid: int = 0
    gid: int = 0
    mode: int = 0o444

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileMount:
        return cls(**data)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()[:16]

    def data(self) -> bytes:
        return base64.b64decode(self.content)


def validate_secret_name(name: str, *, field: str = "name") -> str:
    if not SECRET_NAME.fullmatch(name):
        raise InvalidInput(
            f"secret name {name!r} is invalid: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            field=field,
        )
    return name


def validate_secret_value(value: str, *, field: str = "value") -> str:
    size = len(value.encode())
    if size == 0:
        raise InvalidInput("a secret cannot be empty", field=field)
    if size > MAX_SECRET_BYTES:
        raise InvalidInput(f"a secret holds at most {MAX_SECRET_BYTES} bytes, this one {size}", field=field)
    return value


def container_path(target: str, *, default_dir: str, name: str) -> str:
    """An absolute, normalised path in the container: `target` as given, relative to `default_dir`, or `name` in
    it; InvalidInput for `..` escapes and empty names."""
    path = target or name
    if not path.startswith("/"):
        path = posixpath.join(default_dir, path)
    normal = posixpath.normpath(path)
    if normal in ("/", ".") or "/../" in f"{normal}/" or not normal.startswith("/"):
        raise InvalidInput(f"invalid target path {target or name!r}", field="target")
    return normal
