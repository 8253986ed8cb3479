"""A compose project on the caller's disk, read as Docker Compose v2 reads it, for `corral up` and `corral config`.

Why in the CLI: the files, `.env` and the shell's variables are the caller's; the server gets the compose files,
the env_file and `extends` files they name, and only the variables the files read (compose/variables.py).
Precedence as in Compose: the shell's environment over the project's `.env`; an answers file (`-e`) over both.
Discovery: `compose.yaml`, `compose.yml`, `docker-compose.yaml`, `docker-compose.yml` (the first that exists), plus
`rancher-compose.yml`/`.yaml` next to it. The stack name: `--stack`, else COMPOSE_PROJECT_NAME, else the file's
top-level `name:`, else the folder's name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from corral.model.errors import InvalidInput

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
RANCHER_NAMES = ("rancher-compose.yml", "rancher-compose.yaml")
MAX_FILE_BYTES = 1024 * 1024


@dataclass
class Project:
    name: str
    compose_path: Path
    compose_text: str
    rancher_path: Path | None = None
    rancher_text: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # what the files read (sent as `answers`)
    env_files: dict[str, str] = field(default_factory=dict)  # env_file and extends files, path as written -> text
    profiles: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> str:
        return str(self.compose_path.resolve().parent)


def read_text(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB", field=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", field=str(path)) from None


def discover(files: list[Path], folder: Path | None = None) -> tuple[Path, Path | None]:
    """The compose file and the rancher-compose file (or None), given `-f` files or found in `folder`."""
    if len(files) > 2:
        raise InvalidInput("give at most two files: the compose file, then rancher-compose.yml", field="file")
    if files:
        return files[0], files[1] if len(files) == 2 else None
    here = folder or Path.cwd()
    compose = next((here / n for n in COMPOSE_NAMES if (here / n).is_file()), None)
    if compose is None:
        raise InvalidInput(f"no compose file in {here} (looked for {', '.join(COMPOSE_NAMES)}); give one with -f")
    rancher = next((here / n for n in RANCHER_NAMES if (here / n).is_file()), None)
    return compose, rancher


def load_project(
    files: list[Path],
    *,
    stack: str | None = None,
    answers_file: Path | None = None,
    profiles: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Project:
    # the compose pipeline (schema, YAML, certificates) only for the verbs that read a project: most verbs (ps,
    # exec, logs, scale ...) never load it, and importing it was most of every CLI call's start-up time
    from corral.compose import ComposeFile, env_files_for_upload, parse_answers
    from corral.compose.envfile import parse_env_file
    from corral.compose.variables import referenced_variables

    shell = dict(os.environ if environ is None else environ)
    compose_path, rancher_path = discover(files)
    compose_text = read_text(compose_path)
    rancher_text = read_text(rancher_path) if rancher_path is not None else None
    dot_env_path = compose_path.resolve().parent / ".env"
    dot_env = parse_env_file(read_text(dot_env_path), ".env", {}) if dot_env_path.is_file() else {}
    answers = parse_answers(read_text(answers_file), file_name=answers_file.name) if answers_file else {}
    local = {**dot_env, **shell, **answers}
    compose = ComposeFile(compose_path.name, compose_text, str(compose_path.resolve().parent))
    env_files = env_files_for_upload(compose, answers=local)
    texts = [(compose_path.name, compose_text)]
    if rancher_path is not None and rancher_text is not None:
        texts.append((rancher_path.name, rancher_text))
    names = referenced_variables(texts + [(p, t) for p, t in env_files.items() if _is_yaml(p)], env_files.values())
    variables = {**{k: local[k] for k in sorted(names) if k in local}, **answers}
    return Project(
        name=stack or _project_name(local, compose_text, compose_path),
        compose_path=compose_path,
        compose_text=compose_text,
        rancher_path=rancher_path,
        rancher_text=rancher_text,
        variables=variables,
        env_files=env_files,
        profiles=_profiles(profiles, local),
    )


def _is_yaml(path: str) -> bool:
    return path.endswith((".yml", ".yaml"))


def _profiles(given: list[str] | None, variables: dict[str, str]) -> list[str]:
    if given:
        return sorted(set(given))
    return sorted({p.strip() for p in variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()})


def _project_name(variables: dict[str, str], compose_text: str, compose_path: Path) -> str:
    """As Compose names a project: COMPOSE_PROJECT_NAME, the top-level `name:`, the folder (normalised)."""
    candidate = variables.get("COMPOSE_PROJECT_NAME", "")
    if not candidate:
        from corral.compose.yamlsafe import load_yaml  # see load_project

        try:
            doc = load_yaml(compose_text, compose_path.name, warnings=[])
        except InvalidInput:
            doc = None  # the pipeline reports the file's errors
        if isinstance(doc, dict) and isinstance(doc.get("name"), str):
            candidate = doc["name"]
    if not candidate:
        candidate = compose_path.resolve().parent.name
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", candidate.lower())).strip("-")
    return cleaned or "stack"
