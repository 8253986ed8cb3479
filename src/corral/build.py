"""Which code this process runs: the version plus a fingerprint of the installed sources.

Why: an agent keeps running the code it was started with. After Corral is updated (a `git pull` in a development
checkout, a new package), the server compares each agent's build with its own and restarts the local hosts' agents
whose build differs, and shows `agent_outdated` for the others, instead of letting old agents misread new messages.
Outside the layers (like `corral.config`): it only reads the package's own files.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import corral


@functools.cache
def build_id() -> str:
    """This process's build: computed once, at first use (early in every process's life)."""
    return current_build_id()


def current_build_id() -> str:
    """`VERSION+FINGERPRINT` of the code on disk now, the fingerprint being a digest of every .py file of the
    package (paths and bytes): what a process started now would run. The files are read again only when their
    paths, sizes or modification times changed (the supervisor asks every few seconds)."""
    root = Path(corral.__file__).resolve().parent
    paths = sorted(root.rglob("*.py"))
    stats = [path.stat() for path in paths]
    stamp = tuple((str(path), st.st_mtime_ns, st.st_size) for path, st in zip(paths, stats, strict=True))
    cached = _last.get(stamp)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    result = f"{corral.__version__}+{digest.hexdigest()[:12]}"
    _last.clear()
    _last[stamp] = result
    return result


_last: dict[tuple[tuple[str, int, int], ...], str] = {}  # the last stamp of the files -> its build id
