"""One websocket session between the agent and the server's `/v1/agent` endpoint.

Why a class per connection: everything that lives exactly as long as one socket (the welcome, the heartbeat
period, the queue of engine changes) is dropped with it; `run.py` only decides what to do with the outcome —
reconnect after a backoff, or stop for good when the server removed the host.

Flow: hello -> welcome -> snapshot (once the engine answers) -> heartbeats every `heartbeat_seconds`, one
`container` message per changed container, a full snapshot again every RESYNC_SECONDS and after an engine
outage. An engine outage itself is reported (`engine`: unavailable, why; available again before the snapshot).
The architectures of the engine's images go in the hello and, when they change (image events, resyncs), in an
`images` message. Incoming messages are checked; a malformed one is logged, an unknown type answered with `error`.

Convergence (converge.py): every `desired` message replaces the desired set and converges at once; engine events
converge again (debounced), and so does a timer every CONVERGE_SECONDS (level-triggered resync). Nothing is
converged before the first `desired` of the connection: a restarted agent must not remove containers only because
the server has not spoken yet. Failures go to the server as `slot` messages.

Streams (streams.py): `logs` and `exec` requests run on threads of their own, their `output` and `end` messages
interleaved with everything else; `stdin`, `resize` and `cancel` are routed to them. They live as long as the
connection: when it ends, every stream of it is stopped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import functools
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from corral.agent.builds import ImageJobs
from corral.agent.converge import Converger, SlotReporter, parse_desired
from corral.agent.engine_monitor import (
    ENGINE_LOST,
    IMAGES_CHANGED,
    RESYNC,
    ContainerEvent,
    EngineChange,
    EngineMonitor,
    await_starts,
)
from corral.agent.files import secrets_from_wire
from corral.agent.health import HealthMonitor
from corral.agent.image_inventory import ImageInventoryReporter
from corral.agent.image_pulls import PullRequests
from corral.agent.network import NetworkManager
from corral.agent.streams import JobSource, StreamManager, StreamSource
from corral.agent.volumes import VolumeReporter
from corral.build import build_id
from corral.config import Settings
from corral.model import deltas, network_deltas, protocol
from corral.model.credentials import AgentCredentials
from corral.model.entities import ObservedContainer
from corral.model.errors import CorralError, InvalidInput, Unavailable
from corral.model.registries import credentials_from_wire
from corral.model.stack import DesiredContainer

log = logging.getLogger("corral.agent")
_EXTRAS = ("registries", "secrets", "certificates")  # what a desired delta leaves out when unchanged

RESYNC_SECONDS = 60.0
CONVERGE_SECONDS = 10.0  # level-triggered: converge at least this often once a desired set is known
EVENT_DEBOUNCE_SECONDS = 0.5  # a burst of engine events converges once
# a created container's report waits this long at most for its start (or death): one report, not two
CREATE_LINGER_SECONDS = 1.0
WELCOME_TIMEOUT_SECONDS = 15.0
OPEN_TIMEOUT_SECONDS = 10.0
CLOSE_REPLACED = 4409  # the server took a newer connection for the same host
_REQUESTS = frozenset({protocol.VOLUME, protocol.PULL, protocol.IMAGE})  # each answered by one `end`
_STREAM_MESSAGES = frozenset(
    {
        protocol.LOGS,
        protocol.EXEC,
        protocol.STATS,
        protocol.STDIN,
        protocol.RESIZE,
        protocol.CANCEL,
        protocol.PAUSE,
        protocol.RESUME,
        protocol.BUILD,
        protocol.SAVE,
        protocol.LOAD,
        protocol.REMOVE_IMAGE,
    }
)


class Outcome(enum.Enum):
    STOPPED = "stopped"  # the agent is shutting down
    DROPPED = "dropped"  # lost, refused or never established: reconnect after a backoff
    REJECTED = "rejected"  # the server no longer accepts this host: do not retry
    UNTRUSTED = "untrusted"  # the server's certificate fails the pinned CA: do not retry (agent/trust.py)


@dataclass(frozen=True)
class SessionResult:
    outcome: Outcome
    reason: str
    welcomed: bool = False
    certificate_error: ssl.SSLCertVerificationError | None = None


REMOVED_REASON = "host was removed from the server; re-register with a new token"


def agent_socket_url(url: str) -> str:
    """``http(s)://server[/prefix]`` -> ``ws(s)://server[/prefix]/v1/agent``."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise InvalidInput(f"server URL {url!r} must start with http:// or https://", field="url")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/v1/agent", "", ""))


def basic_authorization(credentials: AgentCredentials) -> str:
    pair = f"{credentials.access_key}:{credentials.secret_key}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def classify_close(code: int | None, reason: str) -> SessionResult:
    """What a close code from the server means for the agent."""
    said = f": {reason}" if reason else ""
    if code == protocol.CLOSE_HOST_REMOVED:
        return SessionResult(Outcome.REJECTED, REMOVED_REASON)
    if code == protocol.CLOSE_BAD_CREDENTIALS:
        return SessionResult(
            Outcome.REJECTED, f"server rejected this host's credentials (close 4401{said}); {REMOVED_REASON}"
        )
    if code == CLOSE_REPLACED:
        return SessionResult(
            Outcome.DROPPED,
            "server replaced this connection with a newer one (is a second agent running with these credentials?)",
        )
    return SessionResult(Outcome.DROPPED, f"connection closed (code {code}{said})")


class Session:
    def __init__(
        self,
        *,
        url: str,
        credentials: AgentCredentials,
        labels: dict[str, str],
        monitor: EngineMonitor,
        converger: Converger,
        slot_reporter: SlotReporter,
        settings: Settings,
        stop: asyncio.Event,
        stream_source: StreamSource,
        image_jobs: JobSource | None = None,
        health: HealthMonitor | None = None,
        network: NetworkManager | None = None,
        ssl_context: ssl.SSLContext | None = None,
        pin_trust: Callable[[str], list[str]] | None = None,
        on_certificates: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.on_certificates = on_certificates  # the LBs' certificates of each desired set (agent/lb.py)
        self.socket_url = agent_socket_url(url)
        self.pin_trust = pin_trust  # pins a `trust` message's CA bundle; the digests now trusted (agent/trust.py)
        self.ssl_context = ssl_context if self.socket_url.startswith("wss:") else None
        self.credentials = credentials
        self.labels = labels
        self.monitor = monitor
        self.converger = converger
        self.slot_reporter = slot_reporter
        self.settings = settings
        self.stop = stop
        self.heartbeat_seconds = settings.heartbeat_seconds
        self.welcomed = False
        self._send_lock = asyncio.Lock()
        self._ws: ClientConnection | None = None
        self.environment_id = credentials.environment_id
        self.desired: list[DesiredContainer] | None = None  # None until the server's first `desired` arrives
        self.desired_revision: float | None = None  # its number, acknowledged with `converged` once converged
        self._acked_revision: float | None = None
        self._desired_version: int | None = None  # the version of the set held (deltas: model/deltas.py)
        self._desired_entries: dict[str, deltas.Entry] = {}  # that set's entries by slot id, as the server sent them
        self._network_version: int | None = None  # the version of the network state held (model/network_deltas.py)
        self._network_parts: network_deltas.Parts | None = None  # that state, split by key
        self._desired_extras: dict[str, Any] = {}  # its registries and secrets, as sent (a delta may leave them out)
        self._converge_due: float | None = None  # loop time of the next converge
        self._converge_wake = asyncio.Event()
        self.image_jobs = image_jobs
        self.streams = StreamManager(stream_source, self._send, jobs=image_jobs)
        self.health = health if health is not None else HealthMonitor()  # probes outlive sessions (agent/health.py)
        self._images_sent: dict[str, tuple[str, ...]] | None = None  # the image report this connection last sent
        self.network = network  # the overlay, DNS and metadata (agent/network.py); outlives sessions
        self._engine_reported_down = False  # this connection told the server the engine is down
        self.volumes = VolumeReporter(monitor, self._send)  # the engine's volumes (agent/volumes.py)
        self.image_list = ImageInventoryReporter(monitor, self._send)  # its images for people (issue 18)
        self._volume_tasks: set[asyncio.Task[None]] = set()  # volume and pull requests (agent/image_pulls.py)
        self.pulls = PullRequests(monitor, converger, self._send, self._send_images)

    async def run(self) -> SessionResult:
        """Connect, talk until the socket ends or `stop` is set, and say how it ended. Never raises."""
        try:
            async with connect(
                self.socket_url,
                additional_headers={"Authorization": basic_authorization(self.credentials)},
                user_agent_header=f"corral-agent/{build_id()}",
                open_timeout=OPEN_TIMEOUT_SECONDS,
                ping_interval=self.settings.heartbeat_seconds,
                ping_timeout=self.settings.heartbeat_seconds * max(self.settings.missed_heartbeats, 1),
                close_timeout=5,
                max_size=protocol.MAX_MESSAGE_BYTES,
                ssl=self.ssl_context,
            ) as ws:
                self._ws = ws
                try:
                    return await self._converse(ws)
                finally:
                    await self.streams.close()  # the server forgets the streams of a lost connection
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                return SessionResult(
                    Outcome.REJECTED, f"server refused this host's credentials (HTTP {status}); {REMOVED_REASON}"
                )
            return SessionResult(Outcome.DROPPED, f"server refused the websocket (HTTP {status})")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            result = classify_close(code, exc.rcvd.reason if exc.rcvd is not None else "")
            return SessionResult(result.outcome, result.reason, self.welcomed)
        except ssl.SSLCertVerificationError as exc:
            return SessionResult(Outcome.UNTRUSTED, exc.verify_message or str(exc), certificate_error=exc)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return SessionResult(Outcome.DROPPED, f"cannot reach {self.socket_url}: {exc or type(exc).__name__}")
        except Exception as exc:  # a bug must cost one reconnect, not the agent
            log.exception("agent session failed")
            return SessionResult(Outcome.DROPPED, f"session failed: {exc!r}", self.welcomed)

    # -- the conversation

    async def _converse(self, ws: ClientConnection) -> SessionResult:
        facts = await self.monitor.facts()
        hello: dict[str, Any] = {"facts": asdict(facts), "labels": self.labels, "agent_version": build_id()}
        hello.update(deltas=True, network_deltas=True)  # desired sets and network states as deltas
        if self.network is not None:
            hello.update(self.network.hello_fields())  # the WireGuard public key for the encrypted overlay
        images = await self._read_images()
        if images is not None:  # the server knows the images' architectures before it schedules on this host
            hello["images"] = protocol.images_to_wire(images)
        await self._send(protocol.HELLO, hello)
        self._images_sent = images
        if not await self._await_welcome(ws):
            await ws.close(1002, "no welcome")
            return SessionResult(Outcome.DROPPED, f"server sent no welcome within {WELCOME_TIMEOUT_SECONDS:.0f}s")
        queue = self.monitor.attach()
        self.health.attach(self._send_health)
        if self.converger.puller is not None:  # a finished pull converges at once (agent/pulls.py)
            loop = asyncio.get_running_loop()
            self.converger.puller.on_done = functools.partial(loop.call_soon_threadsafe, self._on_network_ready)
        if isinstance(self.image_jobs, ImageJobs):  # a loaded image converges at once too
            self.image_jobs.on_loaded = functools.partial(
                asyncio.get_running_loop().call_soon_threadsafe, self._on_network_ready
            )
        self.slot_reporter.new_connection()
        if self.network is not None:
            self.network.attach(self._send, self._on_network_ready)
            await self.network.send_report()
        tasks = [
            asyncio.create_task(self._receive(ws), name="agent-receive"),
            asyncio.create_task(self._heartbeat(), name="agent-heartbeat"),
            asyncio.create_task(self._forward(queue), name="agent-forward"),
            asyncio.create_task(self._converge_loop(), name="agent-converge"),
            asyncio.create_task(self.stop.wait(), name="agent-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.monitor.detach(queue)
            self.health.detach(self._send_health)
            if self.network is not None:
                self.network.detach(self._send)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.stop.is_set():
            await ws.close(1000, "agent stopping")
            return SessionResult(Outcome.STOPPED, "agent stopping", self.welcomed)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, ConnectionClosed):
                log.error("agent session task %s failed: %r", task.get_name(), error, exc_info=error)
        await ws.close()
        result = classify_close(ws.close_code, ws.close_reason or "")
        return SessionResult(result.outcome, result.reason, self.welcomed)

    async def _await_welcome(self, ws: ClientConnection) -> bool:
        deadline = time.monotonic() + WELCOME_TIMEOUT_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=remaining)
            except TimeoutError:
                return False
            message = self._decode(raw)
            if message is None:
                continue
            if message.type == protocol.WELCOME:
                self._on_welcome(message)
                return True
            await self._dispatch(message)
        return False

    def _on_welcome(self, message: protocol.Message) -> None:
        period = message.data.get("heartbeat_seconds")
        if isinstance(period, int | float) and not isinstance(period, bool) and period > 0:
            self.heartbeat_seconds = float(period)
        environment_id = message.data.get("environment_id")
        if isinstance(environment_id, str) and environment_id:
            self.environment_id = environment_id
        if not self.welcomed:
            log.info(
                "connected to %s as host %s (environment %s); heartbeat every %gs",
                self.socket_url,
                message.data.get("host_id", self.credentials.host_id),
                message.data.get("environment_id", self.credentials.environment_id),
                self.heartbeat_seconds,
            )
        self.welcomed = True

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            message = self._decode(raw)
            if message is not None:
                await self._dispatch(message)

    def _decode(self, raw: str | bytes) -> protocol.Message | None:
        try:
            return protocol.decode(raw)
        except InvalidInput as exc:
            log.warning("ignoring a malformed message from the server (%s): %s", exc.field, exc.message)
            return None

    async def _dispatch(self, message: protocol.Message) -> None:
        if message.type == protocol.WELCOME:
            self._on_welcome(message)
        elif message.type == protocol.DESIRED:
            await self._on_desired(message)
        elif message.type in _STREAM_MESSAGES:
            await self.streams.handle(message)
        elif message.type == protocol.NETWORK and self.network is not None:
            await self._on_network(message)
        elif message.type == protocol.TRUST and self.pin_trust is not None:
            await self._on_trust(message)
        elif message.type in _REQUESTS:  # on a task: the receive loop never waits for them
            handle = {protocol.VOLUME: self.volumes.handle, protocol.IMAGE: self.image_list.handle}.get(
                message.type, self.pulls.handle
            )
            task = asyncio.create_task(handle(message))
            self._volume_tasks.add(task)
            task.add_done_callback(self._volume_tasks.discard)
        elif message.type == protocol.ERROR:
            log.warning("server reports an error: %s", message.data.get("message", "(no message)"))
        else:
            log.warning("server sent a message of unknown type %r", message.type)
            await self._send(
                protocol.ERROR,
                {"message": f"unknown message type {message.type!r}", "in_reply_to": message.id or None},
            )

    async def _on_trust(self, message: protocol.Message) -> None:
        assert self.pin_trust is not None
        try:
            digests = self.pin_trust(str(message.data.get("ca", "")))
        except (CorralError, OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.warning("cannot pin the CA bundle the server sent (keeping the pinned one): %s", reason)
            await self._send(protocol.ERROR, {"message": f"trust: {reason}", "in_reply_to": message.id or None})
            return
        log.info("pinned the server's CA bundle: %s", ", ".join(digests))
        await self._send(protocol.TRUSTED, {"digests": digests})

    async def _ask_full(self, kind: str, held: int | None, data: dict[str, Any]) -> None:
        """A `desired` or `network` delta on a version other than the one held (a gap): ask for the full one."""
        log.info("%s delta on version %s, I hold %s: asking for the full one", kind, data.get("base"), held)
        await self._send(protocol.ACK, {kind: held, "resync": True})

    async def _on_network(self, message: protocol.Message) -> None:
        """A `network` message: a full state, or a delta on the version held (model/network_deltas.py)."""
        assert self.network is not None
        data, version = message.data, message.data.get("version")
        parts = None
        try:
            if "base" in data:  # a delta: applies to the version it names only
                if deltas.is_gap(self._network_version, data) or self._network_parts is None:
                    await self._ask_full("network", self._network_version, data)
                    return
                parts = network_deltas.apply_network(self._network_parts, data)
                log.info("network delta: version %s on %s", version, self._network_version)
                data = network_deltas.full_state(parts)
            elif isinstance(version, int):
                parts = network_deltas.Parts.of(data)
        except InvalidInput as exc:
            error = exc.message
        else:
            error = self.network.receive(data)
        if error:
            await self._send(protocol.ERROR, {"message": error, "in_reply_to": message.id or None})
            if "base" in message.data:  # the server follows a version I could not take: start again from a full state
                self._network_version, self._network_parts = None, None
                await self._send(protocol.ACK, {"network": None, "resync": True})
            return
        if isinstance(version, int) and not isinstance(version, bool) and parts is not None:
            self._network_version, self._network_parts = version, parts
            await self._send(protocol.ACK, {"network": version})

    async def _on_desired(self, message: protocol.Message) -> None:
        data = message.data
        version = data.get("version")
        try:
            if "put" in data:  # a delta: applies to the version it names only
                if deltas.is_gap(self._desired_version, data):
                    await self._ask_full("desired", self._desired_version, data)
                    return
                entries = deltas.apply(self._desired_entries, data)
                extras = {k: data[k] if k in data else self._desired_extras.get(k) for k in _EXTRAS}
                data = {**data, "containers": deltas.ordered(entries), **extras}
            else:
                entries = deltas.by_slot([e for e in data.get("containers") or [] if isinstance(e, dict)])
            desired = parse_desired(data)
            registries = credentials_from_wire(data.get("registries"))
        except InvalidInput as exc:
            log.warning("ignoring a desired set I cannot read (keeping the previous one): %s", exc.message)
            await self._send(protocol.ERROR, {"message": exc.message, "in_reply_to": message.id or None})
            if "put" in message.data:  # the server follows a version I could not apply: start again from a full set
                self._desired_version = None
                await self._send(protocol.ACK, {"desired": None, "resync": True})
            return
        log.info("received the desired set (%d containers, %d registries)", len(desired), len(registries))
        self.desired = desired
        revision = data.get("revision")
        self.desired_revision = float(revision) if isinstance(revision, int | float) else None
        self.converger.registries = registries  # never logged: they carry passwords
        self.converger.secrets = secrets_from_wire(data.get("secrets"))  # never logged either
        if self.on_certificates is not None:  # the same shape as secrets (name -> PEM text), never logged
            self.on_certificates(secrets_from_wire(data.get("certificates")))
        self._desired_entries = entries
        self._desired_extras = {k: data.get(k) for k in _EXTRAS}
        if isinstance(version, int) and not isinstance(version, bool):
            self._desired_version = version
            await self._send(protocol.ACK, {"desired": version})
        self.health.set_desired(desired)
        self.converger.retry_now()
        self._request_converge(0.0)

    # -- convergence

    def _on_network_ready(self) -> None:
        """The overlay network is in place, or an image pull ended: the containers that waited for it are created
        now."""
        self.converger.retry_now()
        self._request_converge(0.0)

    def _request_converge(self, delay: float) -> None:
        due = asyncio.get_running_loop().time() + delay
        if self._converge_due is None or due < self._converge_due:
            self._converge_due = due
        self._converge_wake.set()

    async def _converge_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = self._converge_due
            if self.desired is None or due is None:
                await self._converge_wake.wait()
                self._converge_wake.clear()
                continue
            if due > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._converge_wake.wait(), timeout=due - loop.time())
                self._converge_wake.clear()
                continue
            # The next periodic round; events arriving while this one runs bring it forward again.
            self._converge_due = loop.time() + CONVERGE_SECONDS
            revision = self.desired_revision
            if await self._converge(self.desired) and revision is not None and revision != self._acked_revision:
                # the server waits for this before it places a stopped container's index elsewhere
                await self._send(protocol.CONVERGED, {"revision": revision})
                self._acked_revision = revision

    async def _converge(self, desired: list[DesiredContainer]) -> bool:
        """One round; True when it ran to its end (every unwanted container was stopped or removed)."""
        try:
            report = await self.converger.run(desired, self.environment_id)
        except Unavailable as exc:
            log.debug("not converging now: %s", exc.message)
            return False
        except Exception:  # a bug must cost one round, not the session
            log.exception("converging failed")
            return False
        for slot_id, reason in self.slot_reporter.updates(report.problems, [d.slot.id for d in desired]):
            await self._send(protocol.SLOT, {"slot_id": slot_id, "reason": reason})
        return True

    async def _send(self, kind: str, data: dict[str, Any]) -> None:
        assert self._ws is not None
        async with self._send_lock:
            await self._ws.send(protocol.Message(kind, data).encode())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self._send(protocol.HEARTBEAT, {"time": time.time()})

    # -- engine -> server

    async def _forward(self, queue: asyncio.Queue[EngineChange]) -> None:
        loop = asyncio.get_running_loop()
        if self.monitor.available:
            await self._send_snapshot()
            await self._send_images()
            await self._report_storage()
        else:
            log.info("docker engine is not available; the container snapshot follows once it is")
            await self._send_engine()
        next_resync = loop.time() + RESYNC_SECONDS
        while True:
            try:
                changes = [await asyncio.wait_for(queue.get(), timeout=max(next_resync - loop.time(), 0.0))]
            except TimeoutError:
                changes = [RESYNC]  # the periodic snapshot
            else:
                self._request_converge(EVENT_DEBOUNCE_SECONDS)  # the engine changed (or came back): converge again
            while not queue.empty():
                changes.append(queue.get_nowait())
            await await_starts(queue, changes, loop.time() + CREATE_LINGER_SECONDS)
            if any(change is ENGINE_LOST for change in changes):
                await self._send_engine()
            if any(change is RESYNC for change in changes):
                await self._send_engine()
                await self._send_snapshot()
                await self._send_images()
                await self._report_storage()
                next_resync = loop.time() + RESYNC_SECONDS
                continue
            if any(change is IMAGES_CHANGED for change in changes):
                await self._send_images()
                await self.image_list.report()
            events = [c for c in changes if isinstance(c, ContainerEvent)]
            await self._send_deltas(events)
            if events:  # a container created or removed mounts or frees volumes
                await self._report_storage()

    async def _report_storage(self) -> None:
        """The volumes and images lists, which containers coming and going change too."""
        await self.volumes.report()
        await self.image_list.report()

    async def _send_engine(self) -> None:
        """Tell the server when the engine stops answering, and when it answers again (before the snapshot)."""
        reason = self.monitor.down_reason
        if reason and not self.monitor.available and not self._engine_reported_down:
            await self._send(protocol.ENGINE, {"available": False, "reason": reason})
            self._engine_reported_down = True
        elif self._engine_reported_down and self.monitor.available:
            await self._send(protocol.ENGINE, {"available": True, "reason": ""})
            self._engine_reported_down = False

    async def _send_snapshot(self) -> None:
        try:
            containers = await self.monitor.call(self.monitor.engine.containers)
        except Unavailable as exc:
            log.debug("no snapshot now: %s", exc.message)
            return
        self.health.observe(containers, full=True)
        containers = [self.health.annotate(c) for c in containers]
        await self._send(protocol.SNAPSHOT, {"containers": [protocol.container_to_wire(c) for c in containers]})
        log.debug("sent a snapshot of %d containers", len(containers))

    async def _read_images(self) -> dict[str, tuple[str, ...]] | None:
        try:
            return await self.monitor.image_platforms()
        except Unavailable as exc:
            log.debug("no image report now: %s", exc.message)
            return None

    async def _send_images(self) -> None:
        """The architectures of the engine's images, when they differ from what this connection last sent."""
        images = await self._read_images()
        if images is None or images == self._images_sent:
            return
        await self._send(protocol.IMAGES, {"images": protocol.images_to_wire(images)})
        self._images_sent = images
        log.debug("sent the architectures of %d image references", len(images))

    async def _send_deltas(self, events: list[ContainerEvent]) -> None:
        """One message per changed container, however many events it had (start = create + start, ...)."""
        destroyed: dict[str, bool] = {}
        for event in events:
            destroyed[event.docker_id] = destroyed.get(event.docker_id, False) or event.action == "destroy"
        for docker_id, gone in destroyed.items():
            if not gone:
                try:
                    container = await self.monitor.call(self.monitor.engine.container, docker_id)
                except Unavailable as exc:
                    log.debug("cannot read container %s: %s", docker_id[:12], exc.message)
                    continue
                if container is not None:
                    self.health.observe([container])
                    container = self.health.annotate(container)
                    await self._send(protocol.CONTAINER, {"container": protocol.container_to_wire(container)})
                    continue
            self.health.forget(docker_id)
            await self._send(protocol.CONTAINER, {"removed": docker_id})

    async def _send_health(self, container: ObservedContainer) -> None:
        """A health change from the monitor: the container as last seen, with its new health."""
        await self._send(protocol.CONTAINER, {"container": protocol.container_to_wire(container)})
