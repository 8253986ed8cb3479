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
    package (paths and bytes): what a process started now would run."""
    root = Path(corral.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return f"{corral.__version__}+{digest.hexdigest()[:12]}"
