"""Shortcuts for compose tests: load YAML text into a StackSpec, or capture the InvalidInput it raises."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from corral.compose import ComposeFile, load_stack
from corral.model.errors import InvalidInput
from corral.model.stack import LaunchConfig, ServiceSpec, StackSpec

DC = "docker-compose.yml"
# The named volumes the one-service helpers declare (an undeclared named volume is an error, as in Compose).
_VOLUMES = "volumes:\n  data: {}\n  a1: {}\n"
RC = "rancher-compose.yml"


def stack(
    compose: str,
    rancher: str | None = None,
    *,
    answers: Mapping[str, str] | None = None,
    env_files: Mapping[str, str] | None = None,
    base_dir: str | None = None,
    profiles: frozenset[str] = frozenset(),
) -> StackSpec:
    return load_stack(
        "app",
        ComposeFile(DC, textwrap.dedent(compose), base_dir),
        ComposeFile(RC, textwrap.dedent(rancher)) if rancher is not None else None,
        answers=answers or {},
        env_files=env_files or {},
        profiles=profiles,
    )


def service(body: str, **kwargs: object) -> ServiceSpec:
    """A v2 file with one service `web` whose body is `body` (indented as the service's keys)."""
    text = "version: '2'\nservices:\n  web:\n" + textwrap.indent(textwrap.dedent(body), "    ") + _VOLUMES
    spec = stack(text, **kwargs)  # type: ignore[arg-type]
    found = spec.service("web")
    assert found is not None
    return found


def launch(body: str, **kwargs: object) -> LaunchConfig:
    return service("image: nginx\n" + textwrap.dedent(body), **kwargs).launch


def error(compose: str, rancher: str | None = None, **kwargs: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        stack(compose, rancher, **kwargs)  # type: ignore[arg-type]
    return info.value


def service_error(body: str, **kwargs: object) -> InvalidInput:
    text = "version: '2'\nservices:\n  web:\n" + textwrap.indent(textwrap.dedent(body), "    ") + _VOLUMES
    return error(text, None, **kwargs)


def warnings_of(body: str, **kwargs: object) -> tuple[str, ...]:
    text = "version: '2'\nservices:\n  web:\n" + textwrap.indent(textwrap.dedent(body), "    ") + _VOLUMES
    return stack(text, **kwargs).warnings  # type: ignore[arg-type]
