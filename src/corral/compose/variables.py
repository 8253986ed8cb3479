"""Which variables a compose project reads from the caller's environment, so a client sends only those.

Why: Compose takes `${VAR}` and bare `environment: [KEY]` entries from the shell (then the project's `.env`); the
server cannot see the caller's shell, so `corral up` sends the values. Sending the whole environment would store
every secret of the caller's shell with the stack; the names below are the ones the files can read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from corral.compose.yamlsafe import load_yaml

_REFERENCE = re.compile(r"\$(\$|\{?([A-Za-z_][A-Za-z0-9_]*))")
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([^\s=#]+)\s*$")


def referenced_variables(compose_texts: Iterable[tuple[str, str]], env_file_texts: Iterable[str] = ()) -> set[str]:
    """Names used as `$VAR`/`${VAR...}` in the files (name, text), bare keys of services' `environment`, and bare
    `KEY` lines of env files."""
    names: set[str] = set()
    for file_name, text in compose_texts:
        names.update(m.group(2) for m in _REFERENCE.finditer(text) if m.group(2))
        doc = load_yaml(text, file_name, warnings=[])
        if isinstance(doc, dict):
            services = doc.get("services") if ("services" in doc or "version" in doc) else doc
            for body in (services or {}).values() if isinstance(services, dict) else ():
                names.update(_bare_environment_keys(body))
    for text in env_file_texts:
        names.update(m.group(1) for line in text.splitlines() if (m := _ENV_LINE.fullmatch(line)))
    return names


def _bare_environment_keys(body: Any) -> set[str]:
    env = body.get("environment") if isinstance(body, dict) else None
    if isinstance(env, list):
        return {item for item in env if isinstance(item, str) and "=" not in item}
    if isinstance(env, dict):
        return {str(key) for key, value in env.items() if value is None}
    return set()
