"""Images Corral builds from a compose `build:`: what a build is, how its image is named, and its limits.

Why a tag made of the context's digest: the digest of the packed context plus every build setting names the image
(`corral-build/<stack>-<service>:<digest12>`), so an unchanged context is never built again, a changed one gets a
new tag (a changed launch config: the containers are replaced), and every host can tell by the tag alone whether it
already holds the right image. Such images never come from a registry: the server has them built on a host of each
architecture and sends them to the hosts that need them (server/hub/builds.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from corral.model.errors import InvalidInput

BUILT_IMAGE_PREFIX = "corral-build/"
PLACEHOLDER_IMAGE = "corral-build/pending:build"  # a building service's image until the server names it
MAX_CONTEXT_BYTES = 8 * 1024 * 1024  # one packed context (tar); the websocket carries it to the builder in one piece
MAX_CONTEXTS_BYTES = 10 * 1024 * 1024  # all contexts of one `corral up` (the request body is at most 16 MiB)
MAX_BUILD_ARGS = 100
_NAME_PART = re.compile(r"[^a-z0-9]+")
DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BuildSpec:
    """A service's `build:` as the server keeps it (the context itself is stored by its digest)."""

    context: str  # the context as written (a folder relative to the compose file)
    dockerfile: str = "Dockerfile"  # relative to the context
    args: tuple[tuple[str, str], ...] = ()
    target: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildSpec:
        return cls(
            context=str(data.get("context", ".")),
            dockerfile=str(data.get("dockerfile", "Dockerfile")),
            args=tuple((str(k), str(v)) for k, v in data.get("args", ())),
            target=str(data.get("target", "")),
            labels=tuple((str(k), str(v)) for k, v in data.get("labels", ())),
        )


@dataclass(frozen=True)
class BuildRecord:
    """One service's build in a stack's stored files (`files["builds"][service]`)."""

    spec: BuildSpec
    context_digest: str  # sha256 of the packed context
    image: str  # the tag every container of the service runs
    nonce: str = ""  # set by `--build`: a new tag for the same context (a forced rebuild)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "context_digest": self.context_digest, "image": self.image,
                "nonce": self.nonce}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildRecord:
        return cls(
            spec=BuildSpec.from_dict(data.get("spec", {})),
            context_digest=str(data.get("context_digest", "")),
            image=str(data.get("image", "")),
            nonce=str(data.get("nonce", "")),
        )


def is_built_image(image: str) -> bool:
    return image.startswith(BUILT_IMAGE_PREFIX)


def build_digest(context_digest: str, spec: BuildSpec, nonce: str = "") -> str:
    """The digest that names the image: the context's bytes and every setting that changes what is built."""
    settings = json.dumps(
        {"dockerfile": spec.dockerfile, "args": spec.args, "target": spec.target, "labels": spec.labels},
        sort_keys=True,
    )
    return hashlib.sha256(f"{context_digest}\n{settings}\n{nonce}".encode()).hexdigest()


def built_image(stack: str, service: str, digest: str) -> str:
    """`corral-build/<stack>-<service>:<digest12>` (lower case, as image names must be)."""
    name = _NAME_PART.sub("-", f"{stack}-{service}".lower()).strip("-") or "image"
    return f"{BUILT_IMAGE_PREFIX}{name}:{digest[:12]}"


def check_context_digest(value: str) -> str:
    if not DIGEST.fullmatch(value):
        raise InvalidInput(f"{value!r} is not a sha256 digest (64 lower-case hex digits)", field="digest")
    return value


def platform_of(arch: str) -> str:
    """Docker's platform for a host architecture (uname spelling)."""
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7l": "linux/arm/v7", "armv6l": "linux/arm/v6"}.get(
        arch, f"linux/{arch}"
    )
