"""Which built images and stored build files are no longer needed: a pure choice over the state of the moment.

Why this rule: every `corral up` with a changed context builds a new image (`corral-build/<stack>-<service>:<tag>`)
on a host of each architecture, which the server keeps as a saved tar and loads on every host that runs the
service; without cleanup each edit of a Dockerfile leaves an image on every host and two files on the server. A
built image is removed from a host when (1) a newer build of the same service exists (its repository has a kept
image), (2) it is neither the service's current image nor the previous one (kept for a rollback or an upgrade that
goes back), and (3) no container on that host uses it, desired or still present (stopped ones too). Images of a
removed stack are left alone: nothing newer supersedes them, and `docker image prune` is the operator's.
On the server, a context or saved image is removed when no stack's current or previous build names it and it is
older than a grace period (a context `corral up` has just stored is not named by a stack until the stack is
written). The server's pass applies the choice every round (level-triggered): removing what is gone is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from corral.model.builds import is_built_image
from corral.model.images import normalise_reference

FILE_GRACE_SECONDS = 600.0


def repository(image: str) -> str:
    """`corral-build/shop-web` of `corral-build/shop-web:0123456789ab` (built images always carry a tag)."""
    ref = normalise_reference(image)
    path, _, last = ref.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{path}/{name}" if path else name


def images_to_remove(on_host: Iterable[str], in_use: Iterable[str], kept: Iterable[str]) -> list[str]:
    """The built images of `on_host` to remove: superseded (another image of their repository is kept), not kept
    themselves, and used by no container of the host (`in_use`: desired and present containers' images)."""
    kept_refs = {normalise_reference(i) for i in kept if i}
    kept_repos = {repository(i) for i in kept_refs}
    used = {normalise_reference(i) for i in in_use if i}
    chosen = set()
    for image in on_host:
        ref = normalise_reference(image)
        if not is_built_image(ref) or "@" in ref:
            continue
        if ref in kept_refs or ref in used or repository(ref) not in kept_repos:
            continue
        chosen.add(ref)
    return sorted(chosen)


def files_to_remove(
    files: Mapping[str, float], kept: Iterable[str], now: float, grace: float = FILE_GRACE_SECONDS
) -> list[str]:
    """The names among `files` (name -> modification time) that start with no `kept` prefix (a context's digest,
    a saved image's name) and are older than `grace` seconds."""
    prefixes = tuple(p for p in kept if p)
    return sorted(n for n, mtime in files.items() if not n.startswith(prefixes) and now - mtime > grace)
