"""The files an agent writes for its containers' secrets, configs and uploaded bind files (model/files.py).

Why on the host and bound read-only, as Docker swarm does: the bytes must be in the container before its process
starts, on every host it may run on, and must not end up in an image layer or in `docker inspect` (which shows
only the host path). Secrets are written under a tmpfs (`/dev/shm` by default: never on disk), configs and uploads
under the agent's state dir. Each slot has a directory of its own, rewritten before every create of its container
(the file names are the mounts' positions, never the secrets' names) and removed once the slot is no longer
desired. A container whose secret the server did not send (removed from the environment meanwhile) is not
created: it waits, and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Collection, Mapping
from pathlib import Path

from corral.model.errors import CorralError
from corral.model.stack import DesiredContainer

log = logging.getLogger("corral.agent.files")

# /run first: only root may write there; in /dev/shm `_own_directory` refuses a directory planted by another user
TMPFS_CHOICES = (Path("/run"), Path("/dev/shm"))  # noqa: S108


class WaitingForSecret(CorralError):
    status = 409
    code = "waiting_for_secret"


class ContainerFiles:
    """Writes and prunes the per-slot files under `files_dir` (configs, uploads) and `secrets_dir` (tmpfs)."""

    def __init__(self, files_dir: Path, secrets_dir: Path) -> None:
        self.files_dir = files_dir
        self.secrets_dir = secrets_dir

    @classmethod
    def for_state_dir(cls, state_dir: Path, tmpfs: Path | None = None) -> ContainerFiles:
        """One agent's directories: `files/` in its state dir, and a tmpfs directory named after the state dir
        (two agents on one machine never share one)."""
        if tmpfs is None:
            tmpfs = next((p for p in TMPFS_CHOICES if os.access(p, os.W_OK)), TMPFS_CHOICES[-1])
        tag = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
        return cls(state_dir / "files", tmpfs / f"corral-secrets-{tag}")

    def prepare(self, desired: DesiredContainer, secrets: Mapping[str, str]) -> list[tuple[str, str]]:
        """Write the files of `desired`; return (host path, container path) pairs to bind read-only."""
        mounts = desired.launch.files
        if not mounts:
            return []
        missing = sorted({m.source for m in mounts if m.kind == "secret" and m.source not in secrets})
        if missing:
            raise WaitingForSecret(
                f"waiting for secret {', '.join(missing)}: the server has not sent it (does it still exist in the "
                "environment?)"
            )
        binds: list[tuple[str, str]] = []
        slot = _safe(desired.slot.id)
        for position, mount in enumerate(mounts):
            secret = mount.kind == "secret"
            root = self.secrets_dir if secret else self.files_dir
            _own_directory(root)
            directory = root / slot
            directory.mkdir(exist_ok=True, mode=0o700)
            path = directory / f"{position}-{mount.kind}"
            data = secrets[mount.source].encode() if secret else mount.data()
            _write(path, data, mode=mount.mode, uid=mount.uid, gid=mount.gid)
            binds.append((str(path), mount.target))
        return binds

    def prune(self, desired_slots: Collection[str]) -> None:
        """Remove the directories of slots no longer desired."""
        keep = {_safe(s) for s in desired_slots}
        for root in (self.files_dir, self.secrets_dir):
            if not root.is_dir():
                continue
            for entry in root.iterdir():
                if entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True)


def secrets_from_wire(data: object) -> dict[str, str]:
    """The `secrets` of a `desired` message (name -> value); anything malformed is left out."""
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _own_directory(path: Path) -> None:
    """Make `path` a directory only this agent's user may enter; refuse one someone else made (or a symlink)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise CorralError(f"{path} is not a directory of this agent's user; remove it and retry")
    os.chmod(path, 0o700)


def _safe(slot_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in slot_id) or "_"


def _write(path: Path, data: bytes, *, mode: int, uid: int, gid: int) -> None:
    """Replace `path` with `data` (a new file: a running container keeps the copy it was created with)."""
    temporary = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)
        with contextlib.suppress(PermissionError):  # an agent that is not root keeps its own uid
            os.fchown(out.fileno(), uid, gid)
        os.fchmod(out.fileno(), mode)
    os.replace(temporary, path)
