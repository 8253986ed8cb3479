"""The files an agent writes for its containers (agent/files.py): secrets on the tmpfs side with their uid and mode,
configs and uploads under the state dir, a container without its secret waits saying so, pruning, and a directory
planted by someone else is refused."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from corral.agent.files import ContainerFiles, WaitingForSecret, secrets_from_wire
from corral.model.errors import CorralError
from corral.model.files import FileMount
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig


def desired(slot_id: str, *files: FileMount) -> DesiredContainer:
    slot = ContainerSlot(slot_id, "env", "st", "svc", 1, "h1", "hash")
    return DesiredContainer(slot, LaunchConfig(image="busybox", files=files))


SECRET = FileMount("secret", "db", "/run/secrets/db", uid=1000, gid=1000, mode=0o400)
CONFIG = FileMount("config", "banner", "/banner", content=base64.b64encode(b"hello").decode())


def test_secrets_and_configs_are_written_and_bound(tmp_path: Path) -> None:
    files = ContainerFiles(tmp_path / "state" / "files", tmp_path / "tmpfs" / "secrets")
    binds = files.prepare(desired("s1", SECRET, CONFIG), {"db": "pw"})
    assert [target for _, target in binds] == ["/run/secrets/db", "/banner"]
    secret_path, config_path = (Path(host) for host, _ in binds)
    assert secret_path.is_relative_to(files.secrets_dir) and config_path.is_relative_to(files.files_dir)
    assert secret_path.read_text() == "pw" and config_path.read_bytes() == b"hello"
    info = os.stat(secret_path)
    assert stat.S_IMODE(info.st_mode) == 0o400
    if os.getuid() == 0:
        assert (info.st_uid, info.st_gid) == (1000, 1000)
    assert "db" not in secret_path.name and "pw" not in str(secret_path)  # names and values stay out of paths
    assert stat.S_IMODE(os.stat(files.secrets_dir).st_mode) == 0o700


def test_a_missing_secret_makes_the_container_wait_and_say_so(tmp_path: Path) -> None:
    files = ContainerFiles(tmp_path / "f", tmp_path / "s")
    with pytest.raises(WaitingForSecret, match="waiting for secret db: the server has not sent it"):
        files.prepare(desired("s1", SECRET), {})


def test_slots_no_longer_desired_lose_their_files(tmp_path: Path) -> None:
    files = ContainerFiles(tmp_path / "f", tmp_path / "s")
    files.prepare(desired("s1", SECRET, CONFIG), {"db": "pw"})
    files.prepare(desired("s2", SECRET), {"db": "pw"})
    files.prune({"s2"})
    assert sorted(p.name for p in files.secrets_dir.iterdir()) == ["s2"]
    assert list(files.files_dir.iterdir()) == []


def test_a_symlinked_secrets_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "s").symlink_to(tmp_path / "elsewhere")
    files = ContainerFiles(tmp_path / "f", tmp_path / "s")
    with pytest.raises(CorralError, match="is not a directory of this agent's user"):
        files.prepare(desired("s1", SECRET), {"db": "pw"})
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_secrets_from_wire_keeps_only_strings() -> None:
    assert secrets_from_wire({"a": "1", "b": 2, 3: "x"}) == {"a": "1"}
    assert secrets_from_wire(None) == {}
