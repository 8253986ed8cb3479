"""The cleanup pass of builds: superseded built images off the hosts, unneeded contexts and saved images off the
server's disk, and the kept build logs of removed stacks.

Why a pass over state: what to remove is decided every round from what is true now (the hosts' reported images,
their slots and containers, each stack's current and previous build) by orchestrator/build_cleanup.py, so a lost
message, a host that was away or a server restart only delays a removal; removing twice is harmless. A host's
engine removes an image with `docker rmi` without force (agent/builds.py `remove_image`), so an image a container
uses is never taken away even when the state was stale. Contexts are never stored on the hosts: the builder's
engine receives one with the build request and keeps nothing of it but the image, so a context lives only in the
server's `DATA_DIR/builds/contexts/` and is removed there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from corral.model import protocol
from corral.model.builds import BuildRecord, is_built_image
from corral.model.entities import HostState
from corral.model.errors import CorralError
from corral.orchestrator.build_cleanup import FILE_GRACE_SECONDS, files_to_remove, images_to_remove
from corral.server.hub.builds import BuildCoordinator

log = logging.getLogger("corral.server.build_cleanup")

ROUND_SECONDS = 15.0
FILES_SECONDS = 300.0  # the server's files are looked at this often (or every grace period, if shorter)
REMOVE_TIMEOUT_SECONDS = 120.0
RETRY_SECONDS = 300.0  # after a refused removal (a container outside Corral uses the image)


class BuildCleanup:
    def __init__(
        self,
        builds: BuildCoordinator,
        kept_of: Callable[[str], list[BuildRecord]],
        *,
        round_seconds: float = ROUND_SECONDS,
        file_grace_seconds: float = FILE_GRACE_SECONDS,
    ) -> None:
        self.builds = builds
        self.kept_of = kept_of  # stack id -> its current and previous build records (its stored files)
        self.round_seconds = round_seconds
        self.file_grace_seconds = file_grace_seconds
        self._removing: dict[tuple[str, str], asyncio.Task[None]] = {}  # (host id, image)
        self._refused: dict[tuple[str, str], float] = {}
        self._files_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="build-cleanup")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._removing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.round_seconds)
            try:
                await self.run_round()
            except Exception:  # the next round tries again
                log.exception("the build cleanup round failed")

    async def run_round(self) -> None:
        reads = self.builds.reads.pinned()
        snapshot = reads.snapshot()
        services = reads.list_services()
        by_id = {s.id: s for s in services}
        building = {s.stack_id for s in services if is_built_image(s.spec.launch.image)}
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, self._records, sorted(building))
        kept: dict[str, set[str]] = {}  # environment id -> images to keep
        for service in services:
            if is_built_image(service.spec.launch.image):
                kept.setdefault(service.environment_id, set()).add(service.spec.launch.image)
                kept[service.environment_id].update(r.image for r in records.get(service.stack_id, ()))
        for build in self.builds.history.values():
            if not build.done:
                kept.setdefault(build.environment_id, set()).add(build.image)
        self.builds.prune(s.id for s in snapshot.stacks())
        now = time.time()
        for host in reads.list_hosts(container_counts=False):
            if host.state is not HostState.ACTIVE or not self.builds.hub.is_connected(host.id):
                continue
            in_use = {
                by_id[r.service_id].spec.launch.image
                for r in reads.list_slots(host_id=host.id)
                if r.service_id in by_id
            }
            in_use.update(c.image for _, c in snapshot.containers(host.id))
            for image in images_to_remove(host.images, in_use, kept.get(host.environment_id, set())):
                key = (host.id, image)
                if key in self._removing or now - self._refused.get(key, 0.0) < RETRY_SECONDS:
                    continue
                self._removing[key] = loop.create_task(self._remove(host.id, host.name, image))
        if now - self._files_at >= min(FILES_SECONDS, self.file_grace_seconds):
            self._files_at = now
            every = [r for stack in records.values() for r in stack]
            await loop.run_in_executor(None, self._remove_files, every, now)

    def _records(self, stack_ids: Iterable[str]) -> dict[str, list[BuildRecord]]:
        found: dict[str, list[BuildRecord]] = {}
        for stack_id in stack_ids:
            with contextlib.suppress(CorralError):
                found[stack_id] = self.kept_of(stack_id)
        return found

    async def _remove(self, host_id: str, host_name: str, image: str) -> None:
        key = (host_id, image)
        try:
            async with asyncio.timeout(REMOVE_TIMEOUT_SECONDS):  # an agent that never answers is asked again later
                await self._remove_on(host_id, host_name, image)
        except (CorralError, TimeoutError) as exc:
            self._refused[key] = time.time()
            reason = exc.message if isinstance(exc, CorralError) else "the agent did not answer"
            log.warning("cannot remove the superseded build %s from host %s: %s", image, host_name, reason)
        finally:
            self._removing.pop(key, None)

    async def _remove_on(self, host_id: str, host_name: str, image: str) -> None:
        relay = self.builds.hub.relay
        stream = await relay.open_stream(host_id, protocol.REMOVE_IMAGE, {"image": image})
        try:
            while True:
                message = await relay.next_message(stream)
                if message.type == protocol.END:
                    error = message.data.get("error")
                    if error:
                        raise CorralError(str(error))
                    return
                output = base64.b64decode(str(message.data.get("data", ""))).decode(errors="replace").strip()
                log.info("superseded build %s on host %s: %s", image, host_name, output)
        finally:
            await relay.close_stream(stream)

    def _remove_files(self, records: list[BuildRecord], now: float) -> None:
        """Contexts and saved images no current or previous build names (nor a build under way)."""
        under_way = [b.record for b in self.builds.history.values() if not b.done]
        contexts = {r.context_digest for r in (*records, *under_way)}
        images = {_image_prefix(r.image) for r in (*records, *under_way)}
        for folder, keep in ((self.builds.contexts, contexts), (self.builds.images, images)):
            present = {p.name: p.stat().st_mtime for p in _files(folder)}
            for name in files_to_remove(present, keep, now, self.file_grace_seconds):
                with contextlib.suppress(OSError):
                    (folder / name).unlink()
                    log.info("removed %s (no build needs it)", folder / name)


def _image_prefix(image: str) -> str:
    """The start of the saved image's file names (server/hub/builds.py `_image_file`), for every architecture."""
    return hashlib.sha256(image.encode()).hexdigest()[:32] + "-"


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
