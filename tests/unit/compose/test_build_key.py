"""Compose `build:`: the short and long forms, errors naming file, service and field, and how the built image is
named (by digest: unchanged context, same tag; `--build`, a new tag; `--no-build`, the previous build's tag)."""

from __future__ import annotations

import textwrap

import pytest

from corral.compose.build import attach_builds, build_specs, parse_build
from corral.compose.location import Loc
from corral.model.builds import PLACEHOLDER_IMAGE, BuildSpec, build_digest, built_image, is_built_image
from corral.model.errors import InvalidInput

from .helpers import DC, stack

D1 = "1" * 64
D2 = "2" * 64
COMPOSE = """
services:
  web:
    build: ./web
  api:
    image: registry.example.com/api:1
    build:
      context: services/api
      dockerfile: docker/Dockerfile.prod
      args:
        VERSION: ${VERSION}
        EMPTY:
      target: runtime
      labels: [org.example.team=core]
  db:
    image: postgres:16
"""


def _specs(text: str, **answers: str) -> dict[str, BuildSpec]:
    return build_specs(DC, textwrap.dedent(text), answers=answers)


def test_short_and_long_forms() -> None:
    specs = _specs(COMPOSE, VERSION="2.1")
    assert specs["web"] == BuildSpec(context="./web")
    assert specs["api"] == BuildSpec(
        context="services/api",
        dockerfile="docker/Dockerfile.prod",
        args=(("VERSION", "2.1"),),  # an arg without a value is left out (Compose takes it from the environment)
        target="runtime",
        labels=(("org.example.team", "core"),),
    )
    assert "db" not in specs


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("build: https://github.com/x/y.git", "context", "a remote build context"),
        ("build: /abs/path", "context", "must be a folder relative to the compose file"),
        ("build:\n      context: .\n      dockerfile: ../Dockerfile", "dockerfile", "must be a path inside the build"),
        ("build:\n      context: .\n      colour: red", "colour", "unknown build key 'colour'"),
        ("build:\n      context: 3", "context", "must be a string"),
    ],
)
def test_bad_build_values_name_file_service_and_field(body: str, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _specs(f"services:\n  web:\n    {body}\n")
    assert caught.value.field == f"{DC}:services.web.build.{field}"
    assert caught.value.message.startswith(f"{DC}: services.web.build.{field}:"), caught.value.message
    assert message in caught.value.message


def test_builder_keys_corral_does_not_run_are_warned() -> None:
    warnings: list[str] = []
    parse_build({"context": ".", "ssh": ["default"]}, Loc(DC, ("services", "web", "build")), warnings)
    assert warnings == [f"{DC}: services.web.build.ssh: not supported by Corral's builder and ignored"]


def test_the_image_is_named_by_the_digest_of_context_and_settings() -> None:
    spec = stack("services:\n  web:\n    build: ./web\n  db:\n    image: postgres:16\n")
    assert {s.name: s.launch.image for s in spec.services}["web"] == PLACEHOLDER_IMAGE
    builds = {"web": BuildSpec(context="./web")}
    named, records = attach_builds(spec, builds, {"web": D1}, previous={})
    image = {s.name: s.launch.image for s in named.services}
    assert image["web"] == built_image("app", "web", build_digest(D1, builds["web"]))
    assert image["web"].startswith("corral-build/app-web:") and is_built_image(image["web"])
    assert image["db"] == "postgres:16"
    assert records["web"].context_digest == D1

    same, _ = attach_builds(spec, builds, {"web": D1}, previous=records)
    assert same.services == named.services  # unchanged context: same tag, nothing rebuilt or replaced
    changed, _ = attach_builds(spec, builds, {"web": D2}, previous=records)
    assert {s.name: s.launch.image for s in changed.services}["web"] != image["web"]
    other_args = {"web": BuildSpec(context="./web", args=(("A", "1"),))}
    with_args, _ = attach_builds(spec, other_args, {"web": D1}, previous=records)
    assert {s.name: s.launch.image for s in with_args.services}["web"] != image["web"]


def test_force_gives_a_new_tag_that_later_runs_keep_and_never_keeps_the_previous_one() -> None:
    spec = stack("services:\n  web:\n    build: ./web\n")
    builds = {"web": BuildSpec(context="./web")}
    _, first = attach_builds(spec, builds, {"web": D1}, previous={})
    forced, records = attach_builds(spec, builds, {"web": D1}, previous=first, mode="force", nonce="n1")
    assert forced.services[0].launch.image != first["web"].image
    again, _ = attach_builds(spec, builds, {"web": D1}, previous=records)
    assert again.services[0].launch.image == forced.services[0].launch.image
    kept, _ = attach_builds(spec, builds, {}, previous=records, mode="never")
    assert kept.services[0].launch.image == forced.services[0].launch.image


def test_never_without_a_previous_build_and_a_missing_context_are_errors_naming_the_service() -> None:
    spec = stack("services:\n  web:\n    build: ./web\n")
    builds = {"web": BuildSpec(context="./web")}
    with pytest.raises(InvalidInput, match=r"^service web: --no-build, but its image was never built"):
        attach_builds(spec, builds, {}, previous={}, mode="never")
    with pytest.raises(InvalidInput, match=r"^service web: its build context was not sent"):
        attach_builds(spec, builds, {}, previous={})
