"""The images a host's engine holds, as its agent reports them and the API and UI show them (issue 18): id, tags,
size, creation time and the containers that use each.

Why pure and here: the agent writes the report (`image_list` message), the server parses it bounds-checked, the
API lists it and refuses to remove an image in use; one definition keeps them equal. model/images.py keeps the
other image report (reference -> architectures), which the scheduler reads; this one is for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from corral.model.errors import InvalidInput

MAX_IMAGES = 10_000
MAX_TAGS = 100
MAX_USERS = 1_000
MAX_TEXT = 512
IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{12,64}")


@dataclass(frozen=True)
class ObservedImage:
    """One image of one host's engine."""

    id: str  # sha256:<64 hex>, as the engine names it
    tags: tuple[str, ...] = ()  # repo:tag, sorted; empty for a dangling image
    size: int = 0  # bytes
    created: float = 0.0  # epoch seconds (the image's own creation time, not its pull)
    containers: tuple[str, ...] = ()  # names of the containers (any state) made from it, sorted

    @property
    def in_use(self) -> bool:
        return bool(self.containers)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


def image_to_wire(image: ObservedImage) -> dict[str, Any]:
    return {
        "id": image.id,
        "tags": list(image.tags),
        "size": image.size,
        "created": image.created,
        "containers": list(image.containers),
    }


def _number(value: object, where: str) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{where} must be a number of at least 0", field=where)
    return float(value)


def _strings(value: object, where: str, limit: int) -> tuple[str, ...]:
    items = value if value is not None else []
    if not isinstance(items, list) or len(items) > limit or not all(isinstance(s, str) for s in items):
        raise InvalidInput(f"{where} must be a list of at most {limit} strings", field=where)
    return tuple(sorted({s.lstrip("/")[:MAX_TEXT] for s in items if s}))


def images_from_wire(data: object) -> tuple[ObservedImage, ...]:
    """An agent's `image_list` report, bounds-checked; sorted by id. InvalidInput names the bad field."""
    if not isinstance(data, list):
        raise InvalidInput("images must be a list of image objects", field="images")
    if len(data) > MAX_IMAGES:
        raise InvalidInput(f"images lists more than {MAX_IMAGES} images", field="images")
    found: dict[str, ObservedImage] = {}
    for i, item in enumerate(data):
        where = f"images[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object", field=where)
        image_id = item.get("id")
        if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id.lower()):
            raise InvalidInput(f"{where}.id must be an image id (sha256:<hex>)", field=f"{where}.id")
        image_id = image_id.lower()
        image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
        tags = tuple(t for t in _strings(item.get("tags"), f"{where}.tags", MAX_TAGS) if t != "<none>:<none>")
        found[image_id] = ObservedImage(
            id=image_id,
            tags=tags,
            size=int(_number(item.get("size"), f"{where}.size")),
            created=_number(item.get("created"), f"{where}.created"),
            containers=_strings(item.get("containers"), f"{where}.containers", MAX_USERS),
        )
    return tuple(found[key] for key in sorted(found))


@dataclass(frozen=True)
class HostImage:
    """One image on one host of an environment: the row the API lists."""

    environment_id: str
    host_id: str
    host_name: str
    image: ObservedImage

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        first_tag = self.image.tags[0] if self.image.tags else "~"  # untagged images after tagged ones
        return (self.environment_id, self.host_name, self.host_id, first_tag, self.image.id)

    def view(self) -> dict[str, Any]:
        return {
            "environment_id": self.environment_id,
            "host_id": self.host_id,
            "host_name": self.host_name,
            "id": self.image.id,
            "short_id": self.image.short_id,
            "tags": list(self.image.tags),
            "size": self.image.size,
            "created": self.image.created,
            "containers": list(self.image.containers),
            "in_use": self.image.in_use,
        }


def find_image(images: Iterable[ObservedImage], ref: str) -> ObservedImage | None:
    """The image a reference names: its full id, an id prefix of at least 12 hex digits (with or without
    `sha256:`), or one of its tags (`busybox` means `busybox:latest`). None when nothing or several match."""
    wanted = ref.strip()
    if not wanted:
        return None
    lowered = wanted.lower()
    if IMAGE_ID.fullmatch(lowered):
        prefix = lowered if lowered.startswith("sha256:") else f"sha256:{lowered}"
        matches = [i for i in images if i.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
    tag = wanted if ":" in wanted.rsplit("/", 1)[-1] else f"{wanted}:latest"
    tagged = [i for i in images if tag in i.tags]
    return tagged[0] if len(tagged) == 1 else None
