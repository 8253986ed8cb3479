"""The agent hub: one websocket per connected host, and the liveness monitor that moves host states.

Why together: both own the same in-memory view (who is connected, when each agent was last heard from). The store
is written only when something changes (state, facts, containers) and, for last-seen times, in a batch every
`LAST_SEEN_FLUSH_SECONDS`, so heartbeats cost no SQL. A database outage (`Unavailable`) never ends a connection:
reports the store cannot take wait in a per-host backlog (server/hub/report_backlog.py) and are applied once it
answers, and liveness lives in memory, so hosts do not flap because of the database.

Streams opened on agents (logs, stats, exec, builds) are relayed by server/hub/stream_relay.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnected

from corral.config import Settings
from corral.model import network_scope, protocol
from corral.model.admission import validate_agent_version, validate_facts
from corral.model.entities import Host, HostState, KeyKind, ObservedContainer, normalise_arch
from corral.model.errors import CorralError, InvalidInput, NotFound, TooManyRequests, Unavailable
from corral.model.image_inventory import ObservedImage, images_from_wire
from corral.model.volumes import volumes_from_wire
from corral.orchestrator.hosts import LivenessPolicy, next_host_state
from corral.server.hub.report_backlog import Report, ReportBacklog, ReportDrain
from corral.server.hub.stream_relay import StreamRelay
from corral.server.security.auth import authenticate_request
from corral.server.shared.events import EventBus
from corral.server.views.overlay_status import parse_connectivity
from corral.server.views.resources import container_view, host_view
from corral.store.repository import Store

log = logging.getLogger("corral.hub")

MONITOR_INTERVAL_SECONDS = 1.0
LAST_SEEN_FLUSH_SECONDS = 30.0
BACKLOG_RETRY_SECONDS = 2.0  # how often reports kept through a database outage are tried again
ENGINE_UNKNOWN_STATUS = "the host's docker engine does not answer"
INBOX_LIMIT = 256  # an agent's messages received and not handled yet (then its socket waits to be read)
# reports that write to the store; while the database is unavailable they wait in the backlog
_STORED_REPORTS = frozenset(
    {
        protocol.SNAPSHOT,
        protocol.CONTAINER,
        protocol.SLOT,
        protocol.IMAGES,
        protocol.CONNECTIVITY,
        protocol.ENGINE,
        protocol.VOLUMES,
    }
)


@dataclass
class Liveness:
    state: HostState
    last_seen: float
    connected: bool = False
    last_flushed: float = 0.0
    engine_down: str = ""  # the agent's word that its Docker engine does not answer (why); "" while it does
    # one transition at a time: the monitor and the connection's handler both evaluate, and two writes of a state in
    # flight could commit in the other order (the store left "reconnecting" under a host active in memory)
    transition: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class AgentSession:
    host_id: str
    websocket: WebSocket
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    agent_version: str = ""  # the agent's build (corral/build.py), from its hello
    deltas: bool = False  # its hello asked for desired-set deltas (model/deltas.py)
    network_deltas: bool = False  # and for network-state deltas (model/network_deltas.py)
    network_scope: bool = False  # and for only the part of the network state it needs (model/network_scope.py)
    network_demand: frozenset[tuple[str, str]] | str = frozenset()  # the services it asked for, or "all"
    welcomed: bool = False  # `welcome` went out: nothing else reaches the agent before it (the protocol's order)

    async def send(self, message: protocol.Message) -> None:
        await self.send_encoded(message.encode())

    async def send_encoded(self, text: str) -> None:
        async with self.send_lock:
            await self.websocket.send_text(text)


class HostReads(Protocol):
    """Where the hub reads hosts (with their container counts): the in-memory state (state/reads.py `StateReads`),
    which every commit of the store reaches before the write returns; the store itself where there is none."""

    def get_host(self, host_id: str) -> Host: ...

    def list_hosts(self, environment_id: str | None = None, *, container_counts: bool = True) -> list[Host]: ...

    def reported_container(self, host_id: str, docker_id: str) -> ObservedContainer | None: ...


class AgentHub:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        settings: Settings,
        *,
        slot_reasons: Callable[[str, str, str], bool] | None = None,
        reads: HostReads | None = None,
    ) -> None:
        self.store = store
        self.reads: HostReads = reads if reads is not None else store
        self.bus = bus
        self.settings = settings
        self.policy = LivenessPolicy(
            heartbeat_seconds=settings.heartbeat_seconds,
            missed_heartbeats=settings.missed_heartbeats,
            grace_seconds=settings.host_grace_seconds,
        )
        self.sessions: dict[str, AgentSession] = {}
        self.liveness: dict[str, Liveness] = {}
        self._environments: dict[str, str] = {}  # host id -> its environment id (fixed for a host's life)
        self._monitor: asyncio.Task[None] | None = None
        self.connect_listeners: list[Callable[[str], Awaitable[None]]] = []  # called after `welcome`
        self.ack_listeners: list[Callable[[str, dict[str, Any]], Awaitable[None]]] = []  # an agent's `ack`
        self.trust_listener: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None  # `trusted` answers
        self.change_listeners: list[Callable[[], None]] = []  # host states or reported containers changed
        # stores an agent's `slot` report: (host id, slot id, reason) -> whether a slot of that host took it
        self.slot_reasons = slot_reasons
        self.relay = StreamRelay(self.send)  # logs, stats, exec, build ... streams opened on agents
        self.backlog = ReportBacklog()
        self.drain = ReportDrain(self.backlog, self._apply_or_refuse, self._store_unavailable)
        self._backlog_task: asyncio.Task[None] | None = None
        self._store_down = False  # the database refused a write: reports wait in the backlog; one log line per outage
        self.converged: dict[str, float] = {}  # host id -> revision of the desired set its agent last converged to
        # host id -> its engine's images as its agent last listed them (`image_list`, for GET /v1/images). In memory:
        # every agent lists them again on connect, so a restarted server shows them once its agents are back
        self.image_lists: dict[str, tuple[ObservedImage, ...]] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        started = time.time()
        for host in await run_in_threadpool(self.store.list_hosts):
            seen = max(host.last_seen or host.created_at, started)
            self.liveness[host.id] = Liveness(state=host.state, last_seen=seen, last_flushed=seen)
        self._monitor = asyncio.create_task(self._monitor_loop(), name="host-liveness")
        self._backlog_task = asyncio.create_task(self._backlog_loop(), name="report-backlog")

    async def stop(self) -> None:
        for task in (self._monitor, self._backlog_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.drain.stop()
        await self._flush_last_seen(force=True)
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.websocket.close(code=1012, reason="server restarting")

    def track(self, host_id: str, state: HostState) -> None:
        """Start watching a host created while the server runs."""
        self.liveness[host_id] = Liveness(state=state, last_seen=time.time())

    async def release(self, host_id: str) -> None:
        """An approved host leaves `pending`: the liveness rules take it over (active at once if connected)."""
        live = self.liveness.get(host_id)
        if live is None:
            return
        live.state = HostState.REGISTERING
        await self._evaluate(host_id, time.time())
        self._changed()

    def forget(self, host_id: str) -> None:
        self.liveness.pop(host_id, None)
        self._environments.pop(host_id, None)
        self.image_lists.pop(host_id, None)
        self.backlog.forget(host_id)

    async def kick(self, host_id: str, code: int = protocol.CLOSE_HOST_REMOVED, reason: str = "host removed") -> None:
        self.forget(host_id)
        session = self.sessions.pop(host_id, None)
        if session is not None:
            with contextlib.suppress(Exception):
                await session.websocket.close(code=code, reason=reason)

    def is_connected(self, host_id: str) -> bool:
        return host_id in self.sessions

    def agent_version(self, host_id: str) -> str | None:
        """The build of the host's connected agent (None when none is connected)."""
        session = self.sessions.get(host_id)
        return session.agent_version if session is not None else None

    async def send(self, host_id: str, message: protocol.Message) -> bool:
        """Send to a connected agent; False if it is not connected (it gets the full state on reconnect)."""
        return await self.send_encoded(host_id, message.encode())

    async def send_encoded(self, host_id: str, text: str) -> bool:
        """`send` of a message encoded already (off the event loop, for large ones)."""
        session = self.sessions.get(host_id)
        if session is None or not session.welcomed:  # before its welcome: the connect listeners send it all after
            return False
        try:
            await session.send_encoded(text)
        except Exception:  # a dying socket: the disconnect path cleans up
            return False
        return True

    def _changed(self) -> None:
        for listener in self.change_listeners:
            listener()

    # -- one agent connection -----------------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        address = websocket.client.host if websocket.client else ""
        try:
            principal = await authenticate_request(websocket.app.state, websocket.headers.get("authorization"), address)
        except TooManyRequests as exc:  # a close the agent retries after its backoff, not a rejection
            await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
            return
        except CorralError as exc:
            await websocket.close(code=protocol.CLOSE_BAD_CREDENTIALS, reason=exc.message[:120])
            return
        if principal.kind is not KeyKind.AGENT or principal.host_id is None:
            await websocket.close(code=protocol.CLOSE_BAD_CREDENTIALS, reason="not an agent key")
            return
        host_id = principal.host_id
        session = AgentSession(host_id=host_id, websocket=websocket)
        previous = self.sessions.get(host_id)
        self.sessions[host_id] = session
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous.websocket.close(code=4409, reason="replaced by a newer connection")
        log.info("agent for %s connected from %s", host_id, address)
        # read on, handle in order on a task of its own: uvicorn reads a websocket only between two `receive` calls,
        # so a message whose handling waits (a hello's full states behind a push, a busy database) would leave the
        # agent's keepalive pong unread, and uvicorn closes the connection after 20 s (`1011 keepalive ping timeout`)
        inbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=INBOX_LIMIT)
        handler = asyncio.create_task(self._handle_inbox(session, inbox, address), name=f"agent-{host_id}")
        try:
            while not handler.done():
                raw = await receive_text(websocket)
                await inbox.put(raw)  # waits only when the handler is INBOX_LIMIT messages behind
        except WebSocketDisconnect:
            pass
        finally:
            if not handler.done():
                await inbox.put(None)  # what arrived before the disconnect is still handled
            with contextlib.suppress(WebSocketDisconnect):
                await handler
            if self.sessions.get(host_id) is session:
                del self.sessions[host_id]
                self.relay.end_streams_of(host_id, "the agent disconnected")
                live = self.liveness.get(host_id)
                if live is not None:
                    live.connected = False
                log.info("agent for %s disconnected", host_id)
                with contextlib.suppress(Unavailable):  # the monitor records it once the database answers
                    # shielded: a server closing the connection's task (its shutdown, a test client leaving) must
                    # not cut the transition between the state in memory and its row, log line and event
                    await asyncio.shield(self._evaluate(host_id, time.time()))

    async def _handle_inbox(self, session: AgentSession, inbox: asyncio.Queue[str | None], address: str) -> None:
        while (raw := await inbox.get()) is not None:
            await self._handle(session, raw, address)

    async def _handle(self, session: AgentSession, raw: str, address: str) -> None:
        host_id = session.host_id
        try:
            message = protocol.decode(raw)
        except InvalidInput as exc:
            await session.send(protocol.Message(protocol.ERROR, {"message": exc.message, "in_reply_to": None}))
            return
        live = self.liveness.get(host_id)
        if live is None:
            await session.websocket.close(code=protocol.CLOSE_HOST_REMOVED, reason="host removed")
            return
        live.last_seen = time.time()
        try:
            if message.type == protocol.HELLO:
                live.engine_down = ""  # the new connection reports its engine afresh
                await self._on_hello(session, message, address)
            elif message.type in _STORED_REPORTS:
                if message.type == protocol.ENGINE:
                    live.engine_down = _engine_down(message.data)
                if message.type != protocol.CONTAINER or not live.engine_down:  # deltas without an engine are stale
                    await self._report(host_id, Report(message, address))
            elif message.type == protocol.HEARTBEAT:
                pass
            elif message.type == protocol.IMAGE_LIST:
                self.image_lists[host_id] = images_from_wire(message.data.get("images"))
            elif message.type == protocol.CONVERGED:
                self._on_converged(host_id, message.data.get("revision"))
            elif message.type == protocol.ACK:
                for on_ack in self.ack_listeners:
                    await on_ack(host_id, message.data)
            elif message.type in (protocol.OUTPUT, protocol.END):
                await self.relay.on_message(host_id, message)
            elif message.type == protocol.TRUSTED:
                if self.trust_listener is not None:
                    await self.trust_listener(host_id, message.data)
            elif message.type == protocol.ERROR:
                log.warning("agent %s reports an error: %s", host_id, message.data.get("message"))
                self.relay.on_error(host_id, message)
            else:
                raise InvalidInput(f"unknown message type {message.type!r}", field="type")
        except CorralError as exc:
            await session.send(protocol.Message(protocol.ERROR, {"message": exc.message, "in_reply_to": message.id}))
            if message.type == protocol.HELLO:  # bad facts: nothing was stored; this connection ends here
                log.warning("agent for %s: hello refused: %s", host_id, exc.message)
                with contextlib.suppress(Exception):
                    await session.websocket.close(code=protocol.CLOSE_BAD_HELLO, reason=exc.message[:120])
                raise WebSocketDisconnect(protocol.CLOSE_BAD_HELLO) from None
        if live.connected is False and message.type == protocol.HELLO:
            live.connected = True
        try:
            await self._evaluate(host_id, live.last_seen)
            if message.type == protocol.HELLO:
                for on_connect in self.connect_listeners:
                    await on_connect(host_id)
        except Unavailable as exc:  # the monitor and the orchestrator's next pass catch up once the database answers
            self._store_unavailable(exc)

    async def _report(self, host_id: str, report: Report) -> None:
        """Queue an agent's report behind the host's others; a task of the host applies them in order
        (server/hub/report_backlog.py), while the database is unavailable at the next retry."""
        self.backlog.add(host_id, report)
        if not self._store_down:
            self.drain.kick(host_id)

    async def _apply_or_refuse(self, host_id: str, report: Report) -> None:
        """Apply one report; one the store can never take is dropped, and its agent is told why."""
        try:
            await self._apply(host_id, report)
        except Unavailable:
            raise
        except CorralError as exc:  # the host is gone, or the report cannot be read: it never will be
            log.warning("dropping a %s report of host %s: %s", report.message.type, host_id, exc.message)
            session = self.sessions.get(host_id)
            if session is not None:
                error = {"message": exc.message, "in_reply_to": report.message.id}
                with contextlib.suppress(Exception):
                    await session.send(protocol.Message(protocol.ERROR, error))

    async def _apply(self, host_id: str, report: Report) -> None:
        message = report.message
        if message.type == protocol.HELLO:
            await self._store_hello(host_id, message, report.address)
        elif message.type == protocol.SNAPSHOT:
            await self._on_snapshot(host_id, message)
        elif message.type == protocol.CONTAINER:
            await self._on_container(host_id, message)
        elif message.type == protocol.SLOT:
            await self._on_slot(host_id, message)
        elif message.type == protocol.IMAGES:
            await self._on_images(host_id, message.data.get("images"))
        elif message.type == protocol.CONNECTIVITY:
            await self._on_connectivity(host_id, message.data)
        elif message.type == protocol.ENGINE:
            await self._on_engine(host_id, message.data)
        elif message.type == protocol.VOLUMES:
            await self._on_volumes(host_id, message.data.get("volumes"))

    def _store_unavailable(self, exc: Unavailable) -> None:
        if not self._store_down:
            log.warning("%s; agents' reports are kept and applied once it answers", exc.message)
        self._store_down = True

    async def _backlog_loop(self) -> None:
        while True:
            await asyncio.sleep(BACKLOG_RETRY_SECONDS)
            try:
                await self.apply_backlog()
            except Exception:  # the retry loop must outlive any one bad report
                log.exception("applying the agents' kept reports failed")

    async def apply_backlog(self) -> None:
        """Apply the kept reports in order; stop at the first one the database still refuses."""
        for host_id in self.backlog.hosts():
            if not await self.drain.run(host_id):
                return
        if self._store_down and not self.backlog.hosts():
            log.info("the database answers again; the agents' kept reports are applied")
            self._store_down = False

    async def _on_hello(self, session: AgentSession, message: protocol.Message, address: str) -> None:
        facts_data = message.data.get("facts")
        if not isinstance(facts_data, dict):
            raise InvalidInput("hello needs a facts object", field="facts")
        validate_facts(facts_data)  # bounds checked before anything is kept (stored by _store_hello)
        if "images" in message.data:
            protocol.images_from_wire(message.data["images"])
        if "wireguard" in message.data:
            protocol.wireguard_from_wire(message.data["wireguard"])
        session.agent_version = validate_agent_version(message.data.get("agent_version"))
        session.deltas = message.data.get("deltas") is True
        session.network_deltas = message.data.get("network_deltas") is True
        session.network_scope = message.data.get("network_scope") is True
        try:
            session.network_demand = network_scope.demand_from_wire(message.data.get("network_demand", []))
        except ValueError as exc:
            raise InvalidInput(str(exc), field="network_demand") from exc
        self.backlog.add(session.host_id, Report(message, address))  # superseded only by a later hello's facts
        report = self.backlog.first(session.host_id)
        host = None
        if self._store_down:
            pass  # kept for the retry
        elif report is None or report.message is not message or self.drain.busy(session.host_id):
            self.drain.kick(session.host_id)  # stored in its turn, behind the reports that wait
        else:  # none waits before it: stored now, before the welcome
            try:
                host = await self._store_hello(session.host_id, message, address)
            except Unavailable as exc:
                self._store_unavailable(exc)
            except CorralError:
                self.backlog.done(session.host_id, report)  # a hello that can never be stored is not kept
                raise
            else:
                self.backlog.done(session.host_id, report)
        if host is None:  # kept for later; the welcome goes out all the same (reads still work)
            host = await run_in_threadpool(self.store.get_host, session.host_id)
        await session.send(
            protocol.Message(
                protocol.WELCOME,
                {
                    "host_id": host.id,
                    "environment_id": host.environment_id,
                    "heartbeat_seconds": self.settings.heartbeat_seconds,
                },
            )
        )
        session.welcomed = True

    async def _store_hello(self, host_id: str, message: protocol.Message, address: str) -> Host:
        facts = validate_facts(message.data.get("facts") or {})
        declared = (await run_in_threadpool(self.store.host_driver_options, host_id)).get("arch")
        if isinstance(declared, str) and declared:  # a host created with --arch: the scheduler trusts the operator
            facts = dataclasses.replace(facts, arch=normalise_arch(declared))
        changes: dict[str, Any] = {"facts": facts, "address": address}
        if "wireguard" in message.data:  # the encrypted overlay's key: the peers get it in their `network`
            changes["overlay_key"], changes["overlay_port"] = protocol.wireguard_from_wire(message.data["wireguard"])
        if "images" in message.data:  # stored with the facts: the host is never active with its images unknown
            changes["images"] = protocol.images_from_wire(message.data["images"])
        host = await run_in_threadpool(functools.partial(self.store.update_host, host_id, **changes))
        self.bus.publish("host", "updated", host_view(host), host.environment_id)
        return host

    async def _on_engine(self, host_id: str, data: dict[str, object]) -> None:
        """The engine is gone: the containers last reported there are `unknown` until the next snapshot."""
        if not _engine_down(data):
            return  # back: the snapshot that follows stores the truth
        if await run_in_threadpool(
            functools.partial(self.store.mark_host_containers, host_id, state="unknown", status=ENGINE_UNKNOWN_STATUS)
        ):
            self._changed()

    async def _on_snapshot(self, host_id: str, message: protocol.Message) -> None:
        items = message.data.get("containers")
        if not isinstance(items, list):
            raise InvalidInput("snapshot needs a containers list", field="containers")
        containers = [protocol.container_from_wire(item) for item in items]
        if not await run_in_threadpool(self.store.replace_host_containers, host_id, containers):
            return  # the same report as before: nothing to show or reconcile
        host = self.reads.get_host(host_id)
        self.bus.publish("host", "updated", host_view(host), host.environment_id)
        self._changed()

    def _on_converged(self, host_id: str, revision: object) -> None:
        """The agent converged to the desired set of `revision` (orchestrator/occupancy.py: its stopped containers
        no longer hold their indexes once reported stopped). In memory: a restarted server waits for new ones."""
        if not isinstance(revision, int | float) or isinstance(revision, bool):
            raise InvalidInput("converged needs a numeric revision", field="revision")
        self.converged[host_id] = float(revision)
        self._changed()

    async def _on_images(self, host_id: str, data: object) -> None:
        images = protocol.images_from_wire(data)
        if self.reads.get_host(host_id).images == images:
            return
        await run_in_threadpool(functools.partial(self.store.update_host, host_id, images=images, counted=False))
        host = self.reads.get_host(host_id)
        self.bus.publish("host", "updated", host_view(host), host.environment_id)
        self._changed()

    async def _on_volumes(self, host_id: str, data: object) -> None:
        """The engine's volumes (model/volumes.py): the volume list and the scheduler's volume affinity read them."""
        volumes = volumes_from_wire(data)
        if self.reads.get_host(host_id).volumes == volumes:
            return
        await run_in_threadpool(functools.partial(self.store.update_host, host_id, volumes=volumes, counted=False))
        self._changed()

    async def _on_connectivity(self, host_id: str, data: object) -> None:
        """The agent's overlay probes (server/views/overlay_status.py); the host view shows broken pairs."""
        connectivity = parse_connectivity(data)
        if self.reads.get_host(host_id).connectivity == connectivity:
            return
        await run_in_threadpool(
            functools.partial(self.store.update_host, host_id, connectivity=connectivity, counted=False)
        )
        host = self.reads.get_host(host_id)
        hosts = self.reads.list_hosts(host.environment_id)
        self.bus.publish("host", "updated", host_view(host, hosts), host.environment_id)

    async def _on_slot(self, host_id: str, message: protocol.Message) -> None:
        slot_id, reason = message.data.get("slot_id"), message.data.get("reason", "")
        if not isinstance(slot_id, str) or not isinstance(reason, str):
            raise InvalidInput("slot needs slot_id and reason strings", field="slot_id")
        if self.slot_reasons is not None and await run_in_threadpool(
            self.slot_reasons, host_id, slot_id, reason[:2000]
        ):
            environment_id = await self._environment_of(host_id)
            self.bus.publish("container", "updated", {"id": slot_id, "reason": reason}, environment_id)

    async def _on_container(self, host_id: str, message: protocol.Message) -> None:
        environment_id = await self._environment_of(host_id)
        removed = message.data.get("removed")
        if isinstance(removed, str) and removed:
            await run_in_threadpool(self.store.remove_host_container, host_id, removed)
            self.bus.publish("container", "removed", {"id": removed, "host_id": host_id}, environment_id)
            self._changed()
            return
        container = protocol.container_from_wire(message.data.get("container"))
        if self.reads.reported_container(host_id, container.docker_id) == container:
            return  # as stored already (an agent may tell a container twice): nothing to write, show or reconcile
        await run_in_threadpool(self.store.upsert_host_container, host_id, container)
        view = {"id": container.docker_id, **container_view(host_id, container)}
        self.bus.publish("container", "updated", view, environment_id)
        self._changed()

    async def _environment_of(self, host_id: str) -> str:
        """A host's environment (it never changes), read once: each container event needs it for its audience."""
        environment_id = self._environments.get(host_id)
        if environment_id is None:
            host = await run_in_threadpool(self.store.get_host, host_id)  # NotFound for a removed host, as before
            environment_id = self._environments[host_id] = host.environment_id
        return environment_id

    # -- liveness -----------------------------------------------------------------------------------------------

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_SECONDS)
            now = time.time()
            for host_id in list(self.liveness):
                try:
                    await self._evaluate(host_id, now)
                except NotFound:
                    self.forget(host_id)
                except Unavailable as exc:  # the state stays as it was in the store; tried again next tick
                    self._store_unavailable(exc)
                except Exception:  # the monitor must outlive any one bad row
                    log.exception("liveness check of host %s failed", host_id)
            try:
                await self._flush_last_seen()
            except Unavailable as exc:
                self._store_unavailable(exc)
            except Exception:
                log.exception("could not record last-seen times")

    async def _evaluate(self, host_id: str, now: float) -> None:
        live = self.liveness.get(host_id)
        if live is None:
            return
        async with live.transition:
            state, reason = next_host_state(
                live.state,
                connected=live.connected,
                last_seen=live.last_seen,
                now=now,
                policy=self.policy,
                engine_down=live.engine_down,
            )
            if state is live.state:
                return
            previous = live.state
            live.state = state
            live.last_flushed = now
            try:
                host = await run_in_threadpool(
                    self.store.update_host, host_id, state=state, state_reason=reason, last_seen=live.last_seen
                )
            except BaseException:
                live.state = previous  # try again on the next tick (also when cancelled: not stored, not told)
                raise
        log.info("host %s (%s): %s -> %s %s", host.name, host_id, previous.value, state.value, reason)
        self.bus.publish("host", "updated", host_view(host), host.environment_id)
        self._changed()

    async def _flush_last_seen(self, *, force: bool = False) -> None:
        now = time.time()
        due = {
            host_id: live.last_seen
            for host_id, live in self.liveness.items()
            if live.connected and (force or now - live.last_flushed >= LAST_SEEN_FLUSH_SECONDS)
        }
        for host_id, seen in due.items():
            with contextlib.suppress(NotFound):
                await run_in_threadpool(self.store.update_host, host_id, last_seen=seen)
            self.liveness[host_id].last_flushed = now


async def receive_text(websocket: WebSocket) -> str:
    """The next text frame; `WebSocketDisconnect` also when the socket was closed under us (a send that failed, or
    uvicorn's keepalive gave up on the agent): Starlette then raises `WebSocketDisconnected` ("Need to call
    "accept" first"), which is the same disconnect, not an error of the handler."""
    try:
        return await websocket.receive_text()
    except WebSocketDisconnected:
        raise WebSocketDisconnect(1006) from None


def _engine_down(data: dict[str, object]) -> str:
    """Why the agent's engine is down ("" when the `engine` message says it answers)."""
    available = data.get("available")
    if not isinstance(available, bool):
        raise InvalidInput("engine needs an 'available' boolean", field="available")
    if available:
        return ""
    return str(data.get("reason") or "no reason given")[:500]
