"""Compose `build:`: which services build their image, with which context, Dockerfile, args, target and labels.

Why a pass beside the pipeline (like compose/files.py): a build needs the context's bytes, which only the client
has. `build_specs` reads every service's `build:` (the short form `build: ./dir` or the long form with `context`,
`dockerfile`, `args`, `target`, `labels`); the CLI packs each context (cli/build_context.py) and sends it with the
stack; `attach_builds` (the server) gives each such service the image named by its context's digest
(model/builds.py), which the server has built per architecture (server/hub/builds.py).

Compose's meaning is kept, with one difference: when a service names both `image` and `build`, Compose builds and
tags the result as `image`; Corral runs the image it built, tagged by digest (`image` would name a registry the
built image is never pushed to). Keys that need a builder Corral does not run (BuildKit's `secrets`, `ssh`,
`cache_from`, `platforms`, ...) are warned and ignored; a remote context (a git or http URL) is refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from corral.compose.files import _document, _raw_services
from corral.compose.interpolate import Interpolator
from corral.compose.location import Loc
from corral.compose.values import as_str, key_values, mapping
from corral.model.builds import MAX_BUILD_ARGS, BuildRecord, BuildSpec, build_digest, built_image
from corral.model.errors import InvalidInput
from corral.model.stack import ServiceSpec, StackSpec

SUPPORTED = frozenset({"context", "dockerfile", "args", "target", "labels"})
IGNORED = frozenset({
    "cache_from", "cache_to", "extra_hosts", "isolation", "network", "no_cache", "platforms", "privileged",
    "pull", "secrets", "shm_size", "ssh", "tags", "ulimits", "additional_contexts", "entitlements",
    "dockerfile_inline",
})  # fmt: skip


def parse_build(value: Any, loc: Loc, warnings: list[str]) -> BuildSpec:
    """One service's `build:` value; InvalidInput naming file, service and field."""
    if isinstance(value, str):
        body: dict[str, Any] = {"context": value}
    else:
        body = mapping(value, loc, null_ok=False)
    for key in body:
        if key.startswith("x-"):
            continue
        if key in IGNORED:
            warnings.append(f"{loc.key(key).prefix()}: not supported by Corral's builder and ignored")
        elif key not in SUPPORTED:
            raise loc.key(key).error(f"unknown build key {key!r} (known: {', '.join(sorted(SUPPORTED))})")
    context = as_str(body.get("context", "."), loc.key("context")).strip() or "."
    if "://" in context or context.startswith("git@"):
        raise loc.key("context").error(
            f"a remote build context ({context}) is not supported: clone it next to the compose file, name the folder"
        )
    if posixpath.isabs(context) or context.startswith("~"):
        raise loc.key("context").error(f"{context!r} must be a folder relative to the compose file")
    dockerfile = as_str(body.get("dockerfile", "Dockerfile"), loc.key("dockerfile")).strip() or "Dockerfile"
    normal = posixpath.normpath(dockerfile)
    if posixpath.isabs(dockerfile) or normal == ".." or normal.startswith("../"):
        raise loc.key("dockerfile").error(f"{dockerfile!r} must be a path inside the build context")
    args = key_values(body.get("args"), loc.key("args"), missing=lambda _: None)
    if len(args) > MAX_BUILD_ARGS:
        raise loc.key("args").error(f"{len(args)} build args, at most {MAX_BUILD_ARGS}")
    labels = key_values(body.get("labels"), loc.key("labels"), missing=lambda _: "")
    target = as_str(body.get("target", ""), loc.key("target")).strip()
    return BuildSpec(
        context=context,
        dockerfile=normal,
        args=tuple(sorted(args.items())),
        target=target,
        labels=tuple(sorted(labels.items())),
    )


def build_specs(compose_name: str, compose_text: str, *, answers: Mapping[str, str]) -> dict[str, BuildSpec]:
    """Service name -> its build, for every service with a `build:` key."""
    doc = _document(compose_name, compose_text)
    interpolator = Interpolator(answers)
    result: dict[str, BuildSpec] = {}
    warnings: list[str] = []
    for name, raw in _raw_services(doc).items():
        loc = Loc(compose_name, ("services", str(name)))
        body = interpolator.value(raw, loc)
        if isinstance(body, dict) and body.get("build") is not None:
            result[str(name)] = parse_build(body["build"], loc.key("build"), warnings)
    return result


def attach_builds(
    spec: StackSpec,
    builds: Mapping[str, BuildSpec],
    context_digests: Mapping[str, str],
    *,
    previous: Mapping[str, BuildRecord],
    mode: str = "auto",
    nonce: str = "",
) -> tuple[StackSpec, dict[str, BuildRecord]]:
    """`spec` with each building service's image named by its build digest, and the records to store.

    `context_digests`: service -> digest of the context the client sent. `mode` "never" (`--no-build`) keeps the
    image of the service's previous build (`previous`), an error when it has none; "force" (`--build`) adds `nonce`
    so the same context gets a new tag (a new build). InvalidInput names the service.
    """
    records: dict[str, BuildRecord] = {}
    services: list[ServiceSpec] = []
    for service in spec.services:
        build = builds.get(service.name)
        if build is None:
            services.append(service)
            continue
        if mode == "never":
            record = previous.get(service.name)
            if record is None:
                raise InvalidInput(
                    f"service {service.name}: --no-build, but its image was never built: run `corral up` without "
                    "--no-build once",
                    field=f"services.{service.name}.build",
                )
        else:
            digest = context_digests.get(service.name)
            if digest is None:
                raise InvalidInput(
                    f"service {service.name}: its build context was not sent (use `corral up`, which packs it)",
                    field=f"services.{service.name}.build",
                )
            old = previous.get(service.name)
            use_nonce = nonce if mode == "force" else (old.nonce if old and old.context_digest == digest else "")
            image = built_image(spec.name, service.name, build_digest(digest, build, use_nonce))
            record = BuildRecord(spec=build, context_digest=digest, image=image, nonce=use_nonce)
        records[service.name] = record
        services.append(replace(service, launch=replace(service.launch, image=record.image)))
    return replace(spec, services=tuple(services)), records
