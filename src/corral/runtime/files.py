"""Small writes into running containers: put a file (a tar archive through the engine's API) and send a signal.

Why here: the agent keeps files inside containers up to date without restarting them (a load balancer's
haproxy.cfg, then SIGUSR2 so HAProxy's master reloads its workers with the listening sockets handed over); the docker
SDK lives in runtime/ only.
"""

from __future__ import annotations

import io
import tarfile
import time

import docker.errors

from corral.model.errors import NotFound
from corral.runtime.docker_engine import DockerEngine


def container_id(engine: DockerEngine, name: str) -> str | None:
    """The id of the running container `name`, or None when there is none running."""
    try:
        container = engine.call("inspect a container", lambda c: c.containers.get(name))
    except docker.errors.NotFound:
        return None
    return str(container.id) if container.status == "running" else None


def put_file(engine: DockerEngine, container: str, path: str, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` (absolute, its directory must exist) inside `container`."""
    directory, _, name = path.rpartition("/")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        archive.addfile(info, io.BytesIO(data))
    try:
        engine.call(
            "copy a file into a container",
            lambda c: c.containers.get(container).put_archive(directory or "/", buffer.getvalue()),
        )
    except docker.errors.NotFound as exc:
        raise NotFound(f"container {container} or its directory {directory} does not exist") from exc


def put_files(engine: DockerEngine, container: str, directory: str, files: dict[str, bytes], mode: int = 0o600) -> None:
    """Write `files` (name -> data) into `directory` (absolute; created, with its parents' existence required)
    inside `container`, in one archive."""
    parent, _, base = directory.rstrip("/").rpartition("/")
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo(base)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o700, now
        archive.addfile(folder)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, now
            archive.addfile(info, io.BytesIO(data))
    try:
        engine.call(
            "copy files into a container",
            lambda c: c.containers.get(container).put_archive(parent or "/", buffer.getvalue()),
        )
    except docker.errors.NotFound as exc:
        raise NotFound(f"container {container} or the directory {parent} does not exist") from exc


def send_signal(engine: DockerEngine, container: str, signal: str) -> None:
    try:
        engine.call("signal a container", lambda c: c.containers.get(container).kill(signal=signal))
    except docker.errors.NotFound as exc:
        raise NotFound(f"container {container} does not exist") from exc
