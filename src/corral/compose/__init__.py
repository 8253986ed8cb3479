"""Compose files in, a typed `StackSpec` out: the pure pipeline behind `corral up`, stack imports and the catalog.

Why pure: the server runs it on uploaded files, the CLI could run it locally, and tests run it without Docker. The
only I/O is reading `env_file`s below `base_dir` when their content was not passed in `env_files`. Variables come
from `answers` only, never from the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from corral.compose.envfile import parse_answers
from corral.compose.files import Uploads, attach_files
from corral.compose.pipeline import build_stack, collect_env_files
from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec

__all__ = ["ComposeFile", "env_files_for_upload", "load_stack", "parse_answers"]

_NO_VALUES: Mapping[str, str] = {}


@dataclass(frozen=True)
class ComposeFile:
    name: str  # file name shown in errors, e.g. "docker-compose.yml"
    text: str
    base_dir: str | None = None  # for env_file and "./x" volumes; None: neither allowed (API uploads) unless env_files


def load_stack(
    stack_name: str,
    compose: ComposeFile,
    rancher: ComposeFile | None = None,
    *,
    answers: Mapping[str, str] = _NO_VALUES,
    env_files: Mapping[str, str] = _NO_VALUES,
    profiles: frozenset[str] = frozenset(),
    uploads: Uploads | None = None,
) -> StackSpec:
    """Parse, interpolate, validate and merge; raise `InvalidInput` naming file, service and field on any problem
    (every problem of the services at once).

    `answers` are the variables for `${VAR}` and bare `environment: [KEY]` entries; `env_files` maps the path of an
    env_file or `extends` file, as written in the compose file, to its content; `profiles` are the active Compose
    profiles ("*": all); `uploads` holds the files and environment values `corral up` sent for relative binds,
    secrets and configs (compose/files.py). The stack name is validated by the caller.
    """
    if compose.base_dir is not None and not os.path.isabs(compose.base_dir):
        raise InvalidInput(f"base_dir {compose.base_dir!r} must be an absolute path", field="base_dir")
    spec = build_stack(
        stack_name,
        compose.name,
        compose.text,
        (rancher.name, rancher.text) if rancher is not None else None,
        answers=answers,
        env_files=env_files,
        base_dir=compose.base_dir,
        profiles=profiles,
    )
    return attach_files(spec, compose.name, compose.text, answers=answers, uploads=uploads)


def env_files_for_upload(compose: ComposeFile, *, answers: Mapping[str, str] = _NO_VALUES) -> dict[str, str]:
    """For clients: the contents of every env_file and `extends` file the services name, read from below
    `compose.base_dir`, keyed as `load_stack(env_files=...)` expects (the path as written, after interpolation)."""
    if compose.base_dir is None or not os.path.isabs(compose.base_dir):
        raise InvalidInput(
            "reading env files needs the compose file's directory as an absolute base_dir", field="base_dir"
        )
    return collect_env_files(compose.name, compose.text, compose.base_dir, answers=answers)
