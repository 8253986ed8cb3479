"""Images on Docker engines: copy locally built ones between engines, and read the architectures of those present.

Why the copy: test and demo hosts (netns + their own dockerd) cannot pull from anywhere; the images they run are built
in the machine's own engine (`corral/busybox:latest` by scripts/setup.sh) and streamed over: `save` on the source is
piped chunk by chunk into `load` on the target, never held whole in memory. Why the architectures: the scheduler
places an image only on hosts of an architecture it runs on, and the agent learns them from its engine
(`ImagePlatforms`). Only this package imports the docker SDK, so the provisioning code and the agent ask here.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors
import requests.exceptions

from corral.model.errors import Conflict, NotFound, Unavailable
from corral.model.image_inventory import ObservedImage
from corral.model.images import image_arch, normalise_reference
from corral.runtime.docker_engine import DockerEngine

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 120

_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def matching_tags(tags: Iterable[str], patterns: list[str]) -> list[str]:
    """The tags (repo:tag) that match any fnmatch pattern; a pattern without ':' also matches any tag of a repo."""
    out: list[str] = []
    for tag in tags:
        repo = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
        if any(fnmatch.fnmatchcase(tag, p) or (":" not in p and fnmatch.fnmatchcase(repo, p)) for p in patterns):
            out.append(tag)
    return sorted(set(out))


def _client(docker_host: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=docker_host, version="auto", timeout=DEFAULT_TIMEOUT_SECONDS)


def copy_images(source_docker_host: str, target_docker_host: str, patterns: list[str]) -> list[str]:
    """Make every tagged image of the source engine that matches a pattern (e.g. "corral/*") present in the target.

    Returns the tags now present in the target from the source, sorted: those streamed over and those the target
    already had with the same image id (skipped, so calling this twice is cheap). Raises `Unavailable` naming the
    engine and the image when either engine cannot be reached or refuses the transfer.
    """
    step = f"connecting to the source engine {source_docker_host}"
    try:
        source = _client(source_docker_host)
        step = f"connecting to the target engine {target_docker_host}"
        target = _client(target_docker_host)
        try:
            step = f"listing images in {source_docker_host}"
            by_tag: dict[str, str] = {}
            for image in source.images.list():
                for tag in image.tags:
                    by_tag[tag] = image.id
            wanted = matching_tags(by_tag, patterns)
            copied: list[str] = []
            for tag in wanted:
                step = f"checking {tag} in {target_docker_host}"
                if _target_has(target, tag, by_tag[tag]):
                    copied.append(tag)
                    continue
                step = f"copying {tag} from {source_docker_host} to {target_docker_host}"
                stream = source.images.get(tag).save(named=tag)
                target.images.load(stream)
                if not _target_has(target, tag, by_tag[tag]):
                    raise Unavailable(f"{step}: the target did not report {tag} after loading it")
                log.info("copied image %s to %s", tag, target_docker_host)
                copied.append(tag)
            return copied
        finally:
            source.close()
            target.close()
    except Unavailable:
        raise
    except _DOCKER_ERRORS as exc:
        raise Unavailable(f"image copy failed while {step}: {exc}") from exc


def _target_has(target: docker.DockerClient, tag: str, image_id: str) -> bool:
    try:
        return bool(target.images.get(tag).id == image_id)
    except docker.errors.ImageNotFound:
        return False


class ImagePlatforms:
    """The architectures of the images on one engine, by every reference to them (repo tags, repo digests, id).

    One list call per read; an image is inspected only the first time its id is seen (an id names immutable
    content, so its architecture never changes). Call from one thread (the agent's engine worker).
    """

    def __init__(self, engine: DockerEngine) -> None:
        self._engine = engine
        self._arch_by_id: dict[str, str] = {}

    def read(self) -> dict[str, tuple[str, ...]]:
        """Normalised reference -> sorted normalised architectures. Raises `Unavailable` when the engine is away."""
        rows: list[dict[str, Any]] = self._engine.call("list images", lambda c: c.api.images())
        found: dict[str, set[str]] = {}
        live: set[str] = set()
        for row in rows:
            image_id = str(row.get("Id") or "")
            if not image_id:
                continue
            live.add(image_id)
            arch = self._arch_of(image_id)
            if not arch:
                continue
            for ref in (image_id, *(row.get("RepoTags") or ()), *(row.get("RepoDigests") or ())):
                key = normalise_reference(str(ref))
                if key:
                    found.setdefault(key, set()).add(arch)
        for gone in set(self._arch_by_id) - live:
            del self._arch_by_id[gone]
        return {ref: tuple(sorted(archs)) for ref, archs in sorted(found.items())}

    def _arch_of(self, image_id: str) -> str:
        arch = self._arch_by_id.get(image_id)
        if arch is None:
            try:
                data: dict[str, Any] = self._engine.call(
                    "inspect an image", functools.partial(_inspect_image, image_id=image_id)
                )
            except docker.errors.ImageNotFound:
                return ""  # removed between the list and the inspect; the next read will not see it
            arch = image_arch(str(data.get("Architecture") or ""), str(data.get("Variant") or ""))
            self._arch_by_id[image_id] = arch
        return arch


def _inspect_image(client: docker.DockerClient, *, image_id: str) -> dict[str, Any]:
    return dict(client.api.inspect_image(image_id))


def list_image_inventory(engine: DockerEngine) -> tuple[ObservedImage, ...]:
    """Every image of the engine with its tags, size, creation time and the containers (any state) made from it."""

    def read(client: docker.DockerClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return client.api.images(), client.api.containers(all=True)

    images, containers = engine.call("list images", read)
    users: dict[str, set[str]] = {}
    for row in containers:
        image_id = str(row.get("ImageID") or "")
        if image_id:
            users.setdefault(image_id, set()).add(str((row.get("Names") or [""])[0]).lstrip("/"))
    found = [
        ObservedImage(
            id=str(row["Id"]),
            tags=tuple(sorted(t for t in row.get("RepoTags") or () if t and t != "<none>:<none>")),
            size=max(0, int(row.get("Size") or 0)),
            created=float(row.get("Created") or 0),
            containers=tuple(sorted(users.get(str(row["Id"]), ()))),
        )
        for row in images
        if row.get("Id")
    ]
    return tuple(sorted(found, key=lambda i: i.id))


def remove_image(engine: DockerEngine, image_id: str) -> None:
    """Remove an image and all its tags; Conflict naming the containers made from it (any state: Docker refuses
    those too), NotFound when the engine has no such image. Never forced."""
    image = next((i for i in list_image_inventory(engine) if i.id == image_id), None)
    if image is None:
        raise NotFound(f"image {image_id} is not on this host", field="id")
    if image.containers:
        raise Conflict(f"image {image.short_id} is in use by {', '.join(image.containers)}", field="id")

    def remove(client: docker.DockerClient) -> None:
        try:  # each tag, then the id: Docker refuses an id with several tags unless forced, and forced would
            for tag in image.tags:  # also untag an image a container was made from meanwhile
                client.api.remove_image(tag, force=False, noprune=False)
            client.api.remove_image(image_id, force=False, noprune=False)
        except docker.errors.ImageNotFound:
            return  # the last tag took the image with it, or it went meanwhile: what was asked
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise Conflict(f"image {image.short_id} is in use: {exc.explanation or exc}", field="id") from exc
            raise

    engine.call(f"remove image {image.short_id}", remove)
