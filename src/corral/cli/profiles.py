"""The CLI's config file: named profiles of server URL, API key, CA and default environment.

Why a file besides the `CORRAL_*` variables: someone who works with several servers (or as several users) switches
with `--profile NAME` (or `CORRAL_PROFILE`) instead of re-exporting four variables, and `corral login` writes the
profile so a password never has to be kept anywhere. The file is `$CORRAL_CONFIG`, else
`$XDG_CONFIG_HOME/corral/cli.json`, else `~/.config/corral/cli.json`; it holds secrets, so it is written 0600 in a
0700 directory. Precedence: flags, then `CORRAL_*` variables, then the profile, then the defaults.

    {"current": "prod", "profiles": {"prod": {"url": "https://...", "access_key": "...", "secret_key": "...",
                                               "ca": "/path/ca.pem", "environment": "default"}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from corral.model.errors import InvalidInput


@dataclass(frozen=True)
class Profile:
    url: str = ""
    access_key: str = ""
    secret_key: str = ""
    ca: str = ""
    environment: str = ""


def config_path() -> Path:
    explicit = os.environ.get("CORRAL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "corral" / "cli.json"


def load(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {"current": "", "profiles": {}}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable JSON config file ({exc})", field="config") from exc
    if not isinstance(document, dict) or not isinstance(document.get("profiles", {}), dict):
        raise InvalidInput(f'{path}: expected {{"current": NAME, "profiles": {{NAME: {{...}}}}}}', field="config")
    document.setdefault("profiles", {})
    document.setdefault("current", "")
    return document


def profile(name: str | None, path: Path | None = None) -> Profile:
    """The named profile (or the current one; an empty Profile when there is no file or no current profile)."""
    document = load(path)
    chosen = name or str(document.get("current") or "")
    if not chosen:
        return Profile()
    entry = document["profiles"].get(chosen)
    if not isinstance(entry, dict):
        if name:
            known = ", ".join(sorted(document["profiles"])) or "none"
            raise InvalidInput(f"no profile {name!r} in {path or config_path()} (profiles: {known})", field="profile")
        return Profile()
    known_fields = {f.name for f in fields(Profile)}
    return Profile(**{k: str(v) for k, v in entry.items() if k in known_fields})


def save(name: str, value: Profile, *, make_current: bool = True, path: Path | None = None) -> Path:
    path = path or config_path()
    document = load(path)
    document["profiles"][name] = {k: v for k, v in asdict(value).items() if v}
    if make_current:
        document["current"] = name
    _write(path, document)
    return path


def use(name: str, path: Path | None = None) -> None:
    path = path or config_path()
    document = load(path)
    if name not in document["profiles"]:
        raise InvalidInput(f"no profile {name!r} in {path}", field="profile")
    document["current"] = name
    _write(path, document)


def remove(name: str, path: Path | None = None) -> None:
    path = path or config_path()
    document = load(path)
    if document["profiles"].pop(name, None) is None:
        raise InvalidInput(f"no profile {name!r} in {path}", field="profile")
    if document.get("current") == name:
        document["current"] = ""
    _write(path, document)


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(temp, 0o600)
    os.replace(temp, path)
