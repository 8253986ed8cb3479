"""Building the images of compose `build:` services, once per CPU architecture, and handing them to every host.

Why this shape:
- **Where it builds**: on a connected, active host of each architecture the environment's hosts have (a service may
  be placed on any of them), through that host's agent and engine (agent/builds.py, runtime/builds.py). One build
  per (image, architecture); the image's tag is its context's digest (model/builds.py), so an unchanged context is
  never built again and a server restart finds the saved images on disk.
- **How images travel**: streamed between agents through the server (`docker save` on the builder into
  `DATA_DIR/builds/images/`, `docker load` on each host that runs the service and lacks the image), not through a
  registry run for the environment. A registry would be one more service to run, secure (TLS and credentials per
  environment) and keep an image of on every host, and its storage would be the server's disk anyway; the agents'
  websockets are already authenticated, pinned to the CA and carry streams with backpressure (the logs/exec
  machinery). The cost: the server relays every byte, once per receiving host (bench/ measures it).
- **Who needs an image**: the hosts with a slot of a service running that image, whose engine does not report it
  (the agent says "waiting for image X: built by Corral" meanwhile). A distribution pass looks every 2 s; a host
  of an architecture nobody built for yet (it joined later) gets a build of its own.
Build state (queued, building, built, failed, the log's last lines) lives in memory; contexts and saved images on
disk, content-addressed. Contexts come from `corral up` (server/routes/api_stacks.py) and are kept by digest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.model import protocol
from corral.model.build_log import BuildLog, redact, secret_values
from corral.model.builds import BuildRecord, check_context_digest, is_built_image, platform_of
from corral.model.entities import Host, HostState
from corral.model.errors import CorralError, NotFound
from corral.model.images import normalise_reference
from corral.server.hub.hub import AgentHub
from corral.server.hub.stream_relay import Stream
from corral.state.reads import StateReads

log = logging.getLogger("corral.server.builds")

KEEP_BUILDS = 10  # the builds (log and state) kept per stack service, the newest; the current ones always
LOAD_CHUNK_BYTES = 256 * 1024
LOAD_WINDOW_BYTES = 768 * 1024  # below the agent's stdin allowance (agent/streams.py MAX_STDIN_BYTES)
DISTRIBUTE_SECONDS = 2.0
RETRY_LOAD_SECONDS = 10.0


@dataclass
class Build:
    """One image built for one architecture: its state and its log (model/build_log.py), kept after it ends."""

    image: str
    arch: str
    stack_id: str
    service: str
    record: BuildRecord
    environment_id: str = ""
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = "queued"  # queued | building | built | failed | waiting (no host of the architecture is up)
    host: str = ""  # the builder's host name
    error: str = ""
    log: BuildLog = field(default_factory=BuildLog)
    created: float = field(default_factory=time.time)
    started: float = 0.0
    finished: float = 0.0
    kept: bool = True  # a real build, kept in the history (not the stand-in for an image built before a restart)

    @property
    def lines(self) -> int:
        """Lines ever logged (the CLI asks for the lines after an offset)."""
        return self.log.total

    @property
    def done(self) -> bool:
        return self.state in ("built", "failed")

    def add(self, text: str) -> None:
        self.log.add(text)

    def fail(self, message: str) -> None:
        self.state, self.error, self.finished = "failed", redact(message, self.log.secrets), time.time()
        self.add(f"error: {self.error}")

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stack_id": self.stack_id,
            "service": self.service,
            "image": self.image,
            "arch": self.arch,
            "state": self.state,
            "host": self.host,
            "error": self.error,
            "digest": self.record.context_digest,
            "created": self.created,
            "started": self.started or None,
            "finished": self.finished or None,
            "lines": self.log.total,
            "cut": self.log.first,
        }

    def view(self, offset: int = 0) -> dict[str, Any]:
        return {**self.summary(), "log": self.log.after(offset)[1]}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "environment_id": self.environment_id, "record": self.record.to_dict(),
                "log": self.log.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Build:
        state = str(data["state"])
        build = cls(
            image=str(data["image"]),
            arch=str(data["arch"]),
            stack_id=str(data["stack_id"]),
            service=str(data["service"]),
            record=BuildRecord.from_dict(data["record"]),
            environment_id=str(data.get("environment_id", "")),
            id=str(data["id"]),
            state=state if state in ("built", "failed") else "failed",
            host=str(data.get("host", "")),
            error=str(data.get("error", "")) if state in ("built", "failed") else "the server stopped during the build",
            log=BuildLog.from_dict(data.get("log") or {}),
            created=float(data.get("created") or 0.0),
            started=float(data.get("started") or 0.0),
            finished=float(data.get("finished") or 0.0),
        )
        return build


class BuildCoordinator:
    def __init__(
        self,
        hub: AgentHub,
        reads: StateReads,
        data_dir: Path,
        records_of: Callable[[str], dict[str, BuildRecord]] | None = None,
        secrets_of: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        self.hub = hub
        self.records_of = records_of  # stack id -> its services' build records (the stack's stored files)
        self.secrets_of = (
            secrets_of  # environment id -> values never to show in a log (its secrets, registry passwords)
        )
        self.reads = reads
        self.contexts = data_dir / "builds" / "contexts"
        self.images = data_dir / "builds" / "images"
        self.logs = data_dir / "builds" / "logs"  # one JSON file per finished build (Build.to_dict)
        self.builds: dict[tuple[str, str], Build] = {}  # (image, arch) -> its latest build
        self.history: dict[str, Build] = {}  # build id -> build, the last KEEP_BUILDS per stack service
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._loads: dict[tuple[str, str], asyncio.Task[None]] = {}  # (host id, image)
        self._load_failed: dict[tuple[str, str], float] = {}
        self._loop: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- contexts

    def store_context(self, data: bytes) -> str:
        """Keep a packed context by its sha256 (once); the digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.contexts / f"{digest}.tar"
        if not path.exists():
            self.contexts.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(data)
            partial.replace(path)
        return digest

    def has_context(self, digest: str) -> bool:
        return (self.contexts / f"{check_context_digest(digest)}.tar").exists()

    def _image_file(self, image: str, arch: str) -> Path:
        name = hashlib.sha256(image.encode()).hexdigest()[:32]
        return self.images / f"{name}-{arch}.tar"

    # -- starting builds

    def request(self, environment_id: str, stack_id: str, records: dict[str, BuildRecord]) -> None:
        """Build every record's image for each architecture of the environment's active hosts (unless built).
        Callable from any thread (the routes run in a thread pool)."""
        if self.loop is None:
            raise CorralError("the build coordinator is not started")
        self.loop.call_soon_threadsafe(self._request, environment_id, stack_id, dict(records))

    def _request(self, environment_id: str, stack_id: str, records: dict[str, BuildRecord]) -> None:
        archs = sorted({h.facts.arch for h in self._hosts(environment_id) if h.facts.arch})
        for service, record in sorted(records.items()):
            for arch in archs:
                self._ensure(environment_id, stack_id, service, record, arch)

    def _ensure(self, environment_id: str, stack_id: str, service: str, record: BuildRecord, arch: str) -> Build:
        key = (record.image, arch)
        build = self.builds.get(key)
        if build is not None and build.state in ("queued", "building", "built"):
            return build
        build = Build(record.image, arch, stack_id, service, record, environment_id)
        if self._image_file(record.image, arch).exists():
            earlier = self._latest(record.image, arch, stack_id)
            if earlier is not None:
                self.builds[key] = earlier
                return earlier
            build.state, build.finished, build.kept = "built", time.time(), False
            build.add(f"{record.image} ({arch}) was built before")
        self.builds[key] = build
        if build.state != "built":
            self.history[build.id] = build
            self._tasks[key] = asyncio.get_running_loop().create_task(self._build(environment_id, build))
        return build

    def _latest(self, image: str, arch: str, stack_id: str) -> Build | None:
        found = [
            b
            for b in self.history.values()
            if (b.image, b.arch, b.stack_id, b.state) == (image, arch, stack_id, "built")
        ]
        return max(found, key=lambda b: b.created, default=None)

    def _hosts(self, environment_id: str) -> list[Host]:
        return [
            h
            for h in self.reads.list_hosts(environment_id, container_counts=False)
            if h.state is HostState.ACTIVE and self.hub.is_connected(h.id)
        ]

    def of_stack(self, stack_id: str, offset: int = 0) -> list[dict[str, Any]]:
        return [b.view(offset) for b in sorted(self.builds.values(), key=lambda b: (b.service, b.arch))
                if b.stack_id == stack_id]  # fmt: skip

    def history_of(self, stack_id: str) -> list[Build]:
        """The stack's kept builds, the newest first."""
        return sorted((b for b in self.history.values() if b.stack_id == stack_id), key=lambda b: -b.created)

    def get(self, stack_id: str, build_id: str) -> Build:
        build = self.history.get(build_id)
        if build is None or build.stack_id != stack_id:
            raise NotFound(f"build {build_id!r} not found in this stack", field="build")
        return build

    def failure_of(self, image: str) -> str:
        """Why `image` could not be built ("" when it was or still may be)."""
        failed = [b for b in self.builds.values() if b.image == image and b.state == "failed"]
        return "; ".join(f"build failed on {b.host or b.arch}: {b.error}" for b in failed)

    # -- one build

    async def _build(self, environment_id: str, build: Build) -> None:
        try:
            if self.secrets_of is not None:
                others = await asyncio.get_running_loop().run_in_executor(None, self.secrets_of, environment_id)
            else:
                others = ()
            build.log.secrets = secret_values(build.record.spec.args, others)
            host = await self._builder(environment_id, build)
            build.host, build.state, build.started = host.name, "building", time.time()
            build.add(f"building {build.image} for {build.arch} on host {host.name}")
            context_file = self.contexts / f"{build.record.context_digest}.tar"
            # up to 8 MiB read and encoded: off the event loop
            context = await asyncio.get_running_loop().run_in_executor(None, _encoded_file, context_file)
            spec = build.record.spec
            request: dict[str, object] = {
                "image": build.image,
                "context": context,
                "dockerfile": spec.dockerfile,
                "args": dict(spec.args),
                "target": spec.target,
                "labels": dict(spec.labels),
                "platform": platform_of(build.arch) if build.arch != "x86_64" else "",
            }
            stream = await self.hub.relay.open_stream(host.id, protocol.BUILD, request)
            error = await self._drain(stream, on_output=lambda data: build.add(data.decode(errors="replace")))
            if error:
                raise CorralError(error)
            await self._save(host, build)
            build.state, build.finished = "built", time.time()
            build.add(f"built {build.image} for {build.arch} in {build.finished - build.started:.1f} s")
            self.distribute()  # the hosts waiting for it get it now, not at the next pass
        except CorralError as exc:
            build.fail(exc.message)
            log.warning("build of %s for %s failed: %s", build.image, build.arch, build.error)
        except Exception as exc:  # a bug must fail one build with a reason, never stay "building"
            log.exception("build of %s failed", build.image)
            build.fail(f"the server failed: {exc!r}")
        finally:
            self._tasks.pop((build.image, build.arch), None)
            if build.done:
                self._keep(build)

    # -- the history: kept on disk, the last KEEP_BUILDS per stack service

    def _keep(self, build: Build) -> None:
        try:
            self.logs.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = self.logs / f"{build.id}.json.part"
            partial.write_text(json.dumps(build.to_dict()))
            partial.replace(self.logs / f"{build.id}.json")
        except OSError as exc:  # the build stands; only its log is not kept over a restart
            log.warning("cannot keep the log of build %s: %s", build.id, exc)
        self.prune()

    def load_history(self) -> None:
        """The kept builds from disk (at start); each (image, architecture)'s newest is its latest build again."""
        for path in sorted(self.logs.glob("*.json")) if self.logs.is_dir() else []:
            try:
                build = Build.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring the kept build %s: %s", path.name, exc)
                continue
            self.history[build.id] = build
            latest = self.builds.get((build.image, build.arch))
            if latest is None or latest.created < build.created:
                self.builds[build.image, build.arch] = build

    def prune(self, stack_ids: Iterable[str] | None = None) -> None:
        """Drop the builds beyond the newest KEEP_BUILDS of each stack service (never a current or running one),
        and, given the ids of the stacks that exist, every build of a removed stack."""
        current = {id(b) for b in self.builds.values()}
        existing = set(stack_ids) if stack_ids is not None else None
        by_service: dict[tuple[str, str], list[Build]] = {}
        for build in self.history.values():
            by_service.setdefault((build.stack_id, build.service), []).append(build)
        drop = []
        for (stack_id, _), builds in by_service.items():
            gone = existing is not None and stack_id not in existing
            for index, build in enumerate(sorted(builds, key=lambda b: -b.created)):
                if gone or (index >= KEEP_BUILDS and build.done and id(build) not in current):
                    drop.append(build)
        for build in drop:
            self.history.pop(build.id, None)
            if self.builds.get((build.image, build.arch)) is build:
                del self.builds[build.image, build.arch]
            with contextlib.suppress(OSError):
                (self.logs / f"{build.id}.json").unlink(missing_ok=True)

    async def _builder(self, environment_id: str, build: Build) -> Host:
        while True:
            hosts = [h for h in self._hosts(environment_id) if h.facts.arch == build.arch]
            if hosts:
                return sorted(hosts, key=lambda h: h.name)[0]
            build.state = "waiting"
            await asyncio.sleep(DISTRIBUTE_SECONDS)

    async def _drain(self, stream: Stream, *, on_output: Any) -> str:
        """Read a stream to its end, handing each output's bytes to `on_output`; the end's error ("" if none)."""
        try:
            while True:
                message = await self.hub.relay.next_message(stream)
                if message.type == protocol.END:
                    error = message.data.get("error")
                    code = message.data.get("exit_code")
                    if error:
                        return str(error)
                    return "" if code in (0, None) else f"exit code {code}"
                on_output(base64.b64decode(str(message.data.get("data", ""))))
        finally:
            await self.hub.relay.close_stream(stream)

    async def _save(self, host: Host, build: Build) -> None:
        path = self._image_file(build.image, build.arch)
        self.images.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".part")
        stream = await self.hub.relay.open_stream(host.id, protocol.SAVE, {"image": build.image})
        with partial.open("wb") as out:
            error = await self._drain(stream, on_output=out.write)
        if error:
            partial.unlink(missing_ok=True)
            raise CorralError(f"saving the built image on {host.name} failed: {error}")
        partial.replace(path)

    # -- distribution

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.load_history)
        self.loop = asyncio.get_running_loop()
        self._loop = asyncio.get_running_loop().create_task(self._distribute_loop(), name="build-distribution")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop, *self._tasks.values(), *self._loads.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _distribute_loop(self) -> None:
        while True:
            await asyncio.sleep(DISTRIBUTE_SECONDS)
            try:
                self.distribute()
            except Exception:  # the next round tries again
                log.exception("distributing built images failed")

    def wanted(self) -> Iterable[tuple[Host, str, str, str]]:
        """(host, image, stack id, service) for each built image a slot on a connected host needs and its engine
        does not report."""
        reads = self.reads.pinned()
        built = [s for s in reads.list_services() if is_built_image(s.spec.launch.image)]
        if not built:  # the common case: nothing to look at per host (this runs on the event loop)
            return
        wanted: dict[str, set[tuple[str, str, str]]] = {}
        for service in built:
            for record in reads.list_slots(service_id=service.id):
                wanted.setdefault(record.slot.host_id, set()).add(
                    (service.spec.launch.image, service.stack_id, record.slot.service)
                )
        for host in reads.list_hosts(container_counts=False):
            if host.id not in wanted or host.state is not HostState.ACTIVE or not self.hub.is_connected(host.id):
                continue
            for image, stack_id, service_name in sorted(wanted[host.id]):
                if normalise_reference(image) not in host.images:
                    yield host, image, stack_id, service_name

    def distribute(self) -> None:
        now = time.time()
        for host, image, stack_id, service in self.wanted():
            key = (host.id, image)
            if key in self._loads or now - self._load_failed.get(key, 0.0) < RETRY_LOAD_SECONDS:
                continue
            path = self._image_file(image, host.facts.arch)
            if not path.exists():
                self._build_for_new_arch(host, image, stack_id, service)
                continue
            self._loads[key] = asyncio.get_running_loop().create_task(self._load(host, image, path))

    def _build_for_new_arch(self, host: Host, image: str, stack_id: str, service: str) -> None:
        """A host of an architecture nobody built `image` for (it joined after `corral up`, or the server restarted
        before the build ended): build it now, from the record in the stack's files."""
        if not host.facts.arch or (image, host.facts.arch) in self.builds:
            return
        known = next((b.record for b in self.builds.values() if b.image == image), None)
        if known is None and self.records_of is not None:
            known = self.records_of(stack_id).get(service)
        if known is not None and known.image == image and self.has_context(known.context_digest):
            self._ensure(host.environment_id, stack_id, service, known, host.facts.arch)

    async def _load(self, host: Host, image: str, path: Path) -> None:
        key = (host.id, image)
        try:
            stream = await self.hub.relay.open_stream(host.id, protocol.LOAD, {"image": image})
            started = time.time()
            error = await self._send_image(stream, path)
            if error:
                raise CorralError(error)
            log.info("loaded %s on %s in %.1f s", image, host.name, time.time() - started)
        except CorralError as exc:
            self._load_failed[key] = time.time()
            log.warning("loading %s on host %s failed: %s", image, host.name, exc.message)
        finally:
            self._loads.pop(key, None)

    async def _send_image(self, stream: Stream, path: Path) -> str:
        """Send the tar as `stdin` chunks, never more than LOAD_WINDOW_BYTES ahead of the agent's acks."""
        sent = acked = 0
        try:
            with path.open("rb") as source:
                while chunk := source.read(LOAD_CHUNK_BYTES):
                    while sent - acked > LOAD_WINDOW_BYTES - len(chunk):
                        message = await self.hub.relay.next_message(stream)
                        if message.type == protocol.END:
                            return str(message.data.get("error") or "the agent ended the load early")
                        acked = _acked(message, acked)
                    data = base64.b64encode(chunk).decode()
                    await self.hub.relay.send_to_stream(stream, protocol.STDIN, {"data": data})
                    sent += len(chunk)
            await self.hub.relay.send_to_stream(stream, protocol.STDIN, {"data": "", "eof": True})
            while True:
                message = await self.hub.relay.next_message(stream)
                if message.type == protocol.END:
                    return str(message.data.get("error") or "")
        finally:
            await self.hub.relay.close_stream(stream)


def _encoded_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _acked(message: protocol.Message, acked: int) -> int:
    if message.data.get("stream") != "ack":
        return acked
    lines = base64.b64decode(str(message.data.get("data", ""))).decode().split()
    return int(lines[-1]) if lines else acked
