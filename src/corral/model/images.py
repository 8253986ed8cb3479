"""Image references and image architectures as agents report them and the scheduler looks them up.

Why here: Docker accepts many spellings of one reference (`busybox`, `busybox:latest`, `docker.io/library/busybox`)
and of one architecture (`arm64`/`aarch64`, `arm` + variant `v7`). The agent reports what its engine says, a compose
file says what its author typed; both sides normalise with these functions so that they meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from corral.model.entities import normalise_arch

_DOCKER_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
_NO_REFERENCE = frozenset({"", "<none>:<none>", "<none>@<none>"})


def normalise_reference(reference: str) -> str:
    """One spelling per image reference: ``busybox`` → ``busybox:latest``, ``docker.io/library/x:1`` → ``x:1``.

    Digest references keep their digest and drop any tag (Docker ignores it); image ids (``sha256:...``) are
    lowercased; "" and Docker's ``<none>:<none>`` give "".
    """
    ref = reference.strip()
    if ref in _NO_REFERENCE:
        return ""
    if ref.lower().startswith("sha256:"):
        return ref.lower()
    name, at, digest = ref.partition("@")
    for prefix in _DOCKER_HUB_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = name.removeprefix("library/")
    path, _, last = name.rpartition("/")
    has_tag = ":" in last
    if at:
        if has_tag:
            name = f"{path}/{last.split(':', 1)[0]}" if path else last.split(":", 1)[0]
        return f"{name}@{digest}"
    return name if has_tag else f"{name}:latest"


def image_arch(architecture: str, variant: str = "") -> str:
    """The normalised architecture of an image from its config's `architecture` and `variant` ("" if unknown).

    32-bit ARM needs the variant: ``arm`` + ``v6`` runs on armv6l, not on armv7l (the default for plain ``arm``).
    """
    raw = architecture.strip().lower()
    if not raw:
        return ""
    if raw == "arm" and variant.strip().lower() in ("v5", "v6"):
        return f"armv{variant.strip().lower()[1:]}l"
    return normalise_arch(raw)


def archs_of_image(image: str, reports: Iterable[Mapping[str, Sequence[str]]]) -> frozenset[str] | None:
    """The architectures `image` is known to run on, from every host's report (reference → architectures).

    The union over hosts: a multi-arch image pulled natively on an x86_64 and on an arm64 host runs on both. None
    when no host knows the image (it cannot be filtered on: the agent reports the missing image instead).
    """
    wanted = normalise_reference(image)
    if not wanted or wanted.startswith("corral-build/"):  # Corral builds it for every architecture (model/builds.py)
        return None
    archs: set[str] = set()
    known = False
    for report in reports:
        found = report.get(wanted)
        if found is not None:
            known = True
            archs.update(normalise_arch(a) for a in found if a)
    return frozenset(archs) if known and archs else None
