"""Health checks run by the agent: probe each running container of a health-checked service from the host, count
successes and failures, and report the container's health state to the server.

Why on the agent: it runs in the host's network namespace and reaches containers on their bridge address (Rancher
needed a `healthcheck` stack of HAProxies for this, and its checks could not see host-network containers, which
stayed "initializing" forever). Why split in two: `initial_state` / `after_probe` / `after_tick` are a pure state
machine (property-tested without sockets or clocks); `HealthMonitor` owns the I/O — it probes on the event loop,
keeps one state per container, and hands a changed container to the current session, which sends it as a
`container` message. Its state outlives sessions, so a reconnect does not send every container back to
"initializing".

States (model/health.py): initializing -> healthy after `healthy_threshold` successes in a row; healthy ->
unhealthy after `unhealthy_threshold` failures in a row; unhealthy -> healthy after `healthy_threshold` successes;
a container that was healthy once and restarts is reinitializing. Initializing (reinitializing) that sees no
success within `initializing_timeout` (`reinitializing_timeout`) turns unhealthy with a reason, instead of staying
initializing forever. Containers whose check is a Docker command (compose `healthcheck.test`) are not probed: the
engine's own status is reported as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from corral.model.entities import ObservedContainer
from corral.model.health import HEALTHY, INITIALIZING, REINITIALIZING, UNHEALTHY, HealthCheck
from corral.model.stack import DesiredContainer
from corral.runtime import labels

log = logging.getLogger("corral.agent.health")

MAX_IDLE_SECONDS = 1.0  # the loop looks at deadlines at least this often
MAX_DETAIL = 200


# -- the pure state machine ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthState:
    status: str  # initializing | healthy | unhealthy | reinitializing
    since: float  # when the current status (or the current start of the container) began
    reason: str = ""  # why it is not healthy; fixed while the status lasts (no report on every failed probe)
    successes: int = 0  # in a row
    failures: int = 0  # in a row
    ever_healthy: bool = False
    last_failure: str = ""

    @property
    def reported(self) -> tuple[str, str]:
        return self.status, self.reason


def initial_state(now: float, previous: HealthState | None = None) -> HealthState:
    """The state of a container that (re)started at `now`; `previous` is what it had before it stopped."""
    again = previous is not None and previous.ever_healthy
    return HealthState(REINITIALIZING if again else INITIALIZING, since=now, ever_healthy=again)


def after_probe(check: HealthCheck, state: HealthState, ok: bool, detail: str, now: float) -> HealthState:
    """The state after one probe (`detail` says why a failed one failed)."""
    if ok:
        successes = state.successes + 1
        if state.status != HEALTHY and successes >= check.healthy_threshold:
            return HealthState(HEALTHY, since=now, ever_healthy=True)
        return dataclasses.replace(state, successes=successes, failures=0)
    failures = state.failures + 1
    failed = dataclasses.replace(state, successes=0, failures=failures, last_failure=detail)
    if state.status == HEALTHY and failures >= check.unhealthy_threshold:
        reason = f"{failures} checks in a row failed: {detail}"
        return dataclasses.replace(failed, status=UNHEALTHY, since=now, reason=reason)
    return failed


def after_tick(check: HealthCheck, state: HealthState, now: float) -> HealthState:
    """The state once `now` is reached: (re)initializing past its timeout turns unhealthy, with a reason."""
    if state.status == INITIALIZING:
        timeout_ms = check.initializing_timeout_ms
    elif state.status == REINITIALIZING:
        timeout_ms = check.reinitializing_timeout_ms
    else:
        return state
    if (now - state.since) * 1000 < timeout_ms:
        return state
    last = f" (last check: {state.last_failure})" if state.last_failure else ""
    reason = f"no successful check within {_seconds(timeout_ms)} after {'a restart' if state.ever_healthy else 'start'}"
    return dataclasses.replace(state, status=UNHEALTHY, since=now, reason=reason + last)


def _seconds(millis: int) -> str:
    return f"{millis / 1000:g} s"


# -- probes ----------------------------------------------------------------------------------------------------

ProbeFn = Callable[[str, int, str, float], Awaitable[tuple[bool, str]]]


def http_status_ok(status_line: bytes) -> tuple[bool, str]:
    """2xx and 3xx count as success (Rancher's rule); anything else says what came back."""
    parts = status_line.decode("latin-1").split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        code = int(parts[1])
        return (200 <= code < 400), f"HTTP {code}"
    shown = status_line[:60].decode("latin-1").strip() or "nothing"
    return False, f"not an HTTP response ({shown!r})"


async def probe(address: str, port: int, request_line: str, timeout_seconds: float) -> tuple[bool, str]:
    """One check: a TCP connect (empty `request_line`) or an HTTP request whose status line must be 2xx/3xx."""
    target = f"{address}:{port}"
    try:
        async with asyncio.timeout(timeout_seconds):
            reader, writer = await asyncio.open_connection(address, port)
            try:
                if not request_line:
                    return True, f"connected to {target}"
                request = f"{request_line}\r\nHost: {address}\r\nUser-Agent: corral-health\r\nConnection: close\r\n\r\n"
                writer.write(request.encode("latin-1"))
                await writer.drain()
                ok, said = http_status_ok(await reader.readline())
                return ok, f"{request_line.split()[1]} on {target}: {said}"
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return False, f"no answer from {target} within {timeout_seconds * 1000:g} ms"
    except OSError as exc:
        return False, f"cannot connect to {target}: {exc.strerror or exc}"


# -- the monitor -----------------------------------------------------------------------------------------------


@dataclass
class _Tracked:
    check: HealthCheck
    address: str
    state: HealthState
    restart_count: int
    next_probe: float
    probing: bool = False


class Probed(Protocol):
    """What `start_due_probes` needs of a tracked target."""

    next_probe: float
    probing: bool


K = TypeVar("K", bound=str | tuple[str, ...])
P = TypeVar("P", bound=Probed)


def start_due_probes(
    tracked: Mapping[K, P],
    now: float,
    probe_one: Callable[[K, P], Coroutine[Any, Any, None]],
    tasks: set[asyncio.Task[None]],
    name: str,
) -> float:
    """Start the probe of every target due at `now` that is not being probed (each in a task held in `tasks`), and
    return when the next one falls due (at most MAX_IDLE_SECONDS on). Shared by the containers' health monitor and
    the external IPs' prober (agent/external_health.py)."""
    next_due = now + MAX_IDLE_SECONDS
    for key, target in list(tracked.items()):
        if target.probing:
            continue
        if target.next_probe <= now:
            target.probing = True
            label = key if isinstance(key, str) else key[-1]
            task = asyncio.create_task(probe_one(key, target), name=f"{name}-{label[:15]}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            next_due = min(next_due, target.next_probe)
    return next_due


@dataclass(frozen=True)
class _Target:
    check: HealthCheck
    host_network: bool


class HealthMonitor:
    """Probes the running containers of the desired slots that have a port check; reports changes to a listener.

    Fed by the session: `set_desired` (each `desired` message), `observe` (every snapshot and delta) and `forget`
    (a removed container). `annotate` puts the current health on a container before it is sent.
    """

    def __init__(self, probe_fn: ProbeFn = probe, clock: Callable[[], float] | None = None) -> None:
        self._probe = probe_fn
        self._clock = clock
        self._targets: dict[str, _Target] = {}  # slot id -> its check
        self._containers: dict[str, ObservedContainer] = {}  # docker id -> last seen
        self._tracked: dict[str, _Tracked] = {}  # docker id -> running container being probed
        self._stopped: dict[str, HealthState] = {}  # docker id -> last state of a container that stopped
        self._listener: Callable[[ObservedContainer], Awaitable[None]] | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def attach(self, listener: Callable[[ObservedContainer], Awaitable[None]]) -> None:
        self._listener = listener

    def detach(self, listener: Callable[[ObservedContainer], Awaitable[None]]) -> None:
        if self._listener == listener:
            self._listener = None

    def set_desired(self, desired: Iterable[DesiredContainer]) -> None:
        targets = {}
        for entry in desired:
            if entry.health_check is not None and entry.health_check.probes:
                targets[entry.slot.id] = _Target(entry.health_check, entry.launch.network_mode == "host")
        self._targets = targets
        self._sync()

    def observe(self, containers: Iterable[ObservedContainer], *, full: bool = False) -> None:
        seen = {c.docker_id: c for c in containers}
        if full:
            self._containers = seen
        else:
            self._containers.update(seen)
        self._sync()

    def forget(self, docker_id: str) -> None:
        self._containers.pop(docker_id, None)
        self._sync()

    def annotate(self, container: ObservedContainer) -> ObservedContainer:
        """The container with the health the agent knows (its probe's state, or a reason for Docker's status)."""
        tracked = self._tracked.get(container.docker_id)
        if tracked is not None:
            status, reason = tracked.state.reported
            return dataclasses.replace(container, health=status, health_reason=reason)
        if container.health == UNHEALTHY and not container.health_reason:
            reason = "its healthcheck command fails (docker inspect shows the output)"
            return dataclasses.replace(container, health_reason=reason)
        return container

    def _sync(self) -> None:
        """Start tracking running containers of checked slots, stop tracking the others."""
        now = self.now()
        wanted: dict[str, tuple[ObservedContainer, _Target]] = {}
        for container in self._containers.values():
            target = self._targets.get(container.labels.get(labels.CONTAINER, ""))
            if target is not None and container.state == "running":
                wanted[container.docker_id] = (container, target)
        for docker_id in list(self._tracked):
            if docker_id not in wanted:
                self._stopped[docker_id] = self._tracked.pop(docker_id).state
        for docker_id in list(self._stopped):
            if docker_id not in self._containers:
                del self._stopped[docker_id]
        for docker_id, (container, target) in wanted.items():
            address = "127.0.0.1" if target.host_network else container.ip
            tracked = self._tracked.get(docker_id)
            if tracked is None:
                state = initial_state(now, self._stopped.pop(docker_id, None))
                self._tracked[docker_id] = _Tracked(
                    target.check, address, state, container.restart_count, now + target.check.interval_ms / 1000
                )
                continue
            tracked.address = address
            if tracked.check != target.check:
                tracked.check = target.check
                tracked.next_probe = min(tracked.next_probe, now + target.check.interval_ms / 1000)
            if container.restart_count > tracked.restart_count:  # restarted between two observations
                tracked.state = initial_state(now, tracked.state)
                tracked.restart_count = container.restart_count
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Probe what is due, apply deadlines, report changes; until `stop` is set."""
        try:
            while not stop.is_set():
                now = self.now()
                for docker_id, tracked in list(self._tracked.items()):
                    await self._apply(docker_id, tracked, after_tick(tracked.check, tracked.state, now))
                next_due = start_due_probes(self._tracked, now, self._probe_one, self._tasks, "health")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(next_due - self.now(), 0.01))
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _probe_one(self, docker_id: str, tracked: _Tracked) -> None:
        check = tracked.check
        try:
            if not tracked.address:
                ok, detail = False, "the container has no IP address to check"
            else:
                ok, detail = await self._probe(
                    tracked.address, check.port or 0, check.request_line, check.response_timeout_ms / 1000
                )
            now = self.now()
            tracked.next_probe = now + check.interval_ms / 1000
            if self._tracked.get(docker_id) is tracked:
                await self._apply(docker_id, tracked, after_probe(check, tracked.state, ok, detail[:MAX_DETAIL], now))
        except Exception:  # one probe must never end the monitor
            log.exception("health probe of %s failed", docker_id[:12])
        finally:
            tracked.probing = False
            self._wake.set()

    async def _apply(self, docker_id: str, tracked: _Tracked, state: HealthState) -> None:
        before = tracked.state.reported
        tracked.state = state
        if state.reported == before:
            return
        container = self._containers.get(docker_id)
        log.info(
            "container %s is %s%s",
            container.name if container is not None else docker_id[:12],
            state.status,
            f": {state.reason}" if state.reason else "",
        )
        if container is not None and self._listener is not None:
            try:
                await self._listener(self.annotate(container))
            except Exception as exc:  # a lost connection: the next session's snapshot carries the state
                log.debug("could not report the health of %s: %r", docker_id[:12], exc)
