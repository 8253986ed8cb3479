"""A thin, typed view of one Docker engine: host facts, the containers on it, and its container event stream.

Why a wrapper: the docker SDK returns loose dicts and raises a zoo of docker/requests/socket errors. Callers
(the agent) want frozen ObservedContainer values and one error to handle: `Unavailable`, meaning "the engine is
not there right now, retry later". The engine may be down when this object is made; the SDK client is created
lazily and recreated after a failure, so one DockerEngine survives engine restarts.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from corral.model.entities import HostFacts, ObservedContainer, normalise_arch
from corral.model.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0

# Container event actions after which the container's observable state (state, exit code, restart count,
# health, name, labels) may differ. exec_*, attach, resize, top, archive-path, ... change nothing we report.
STATE_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "stop",
        "kill",
        "oom",
        "pause",
        "unpause",
        "destroy",
        "rename",
        "update",
    }
)


def is_state_action(action: str) -> bool:
    return action in STATE_ACTIONS or action.startswith("health_status")


# Image events arrive on the same stream, their action prefixed: "image:pull", "image:untag", ...
IMAGE_EVENT_PREFIX = "image:"
IMAGE_ACTIONS = frozenset({"pull", "load", "tag", "untag", "delete", "import"})


def is_image_action(action: str) -> bool:
    """An image appeared, disappeared or changed its references (the architectures report may differ)."""
    return action.startswith(IMAGE_EVENT_PREFIX) and action[len(IMAGE_EVENT_PREFIX) :] in IMAGE_ACTIONS


_TRANSPORT_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
_EXIT_STATUS = re.compile(r"^Exited \((-?\d+)\)")
_FRACTION = re.compile(r"\.(\d{6})\d*")
_NO_POLICY = frozenset({"", "no"})


def _parse_time(value: object) -> float:
    """Docker's RFC 3339 timestamps carry nanoseconds; Python parses at most microseconds."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return 0.0
    try:
        return datetime.fromisoformat(_FRACTION.sub(r".\1", value.replace("Z", "+00:00"))).timestamp()
    except ValueError:
        return 0.0


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _exit_code_from_status(state: str, status: str) -> int | None:
    if state not in ("exited", "dead"):
        return None
    match = _EXIT_STATUS.match(status)
    return int(match.group(1)) if match else None


_LIST_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)$")
# Docker's HEALTHCHECK status -> Corral's health state (a probe from the agent, when configured, overrides it).
_DOCKER_HEALTH = {"starting": "initializing", "healthy": "healthy", "unhealthy": "unhealthy"}


def _status(state: str, exit_code: int | None, health: str) -> str:
    """A short, stable line such as "Up (healthy)" or "Exited (137)".

    The list API's own text ("Up 5 minutes") changes every second; a stable one lets the server compare
    snapshots, and both the list and the inspect paths produce the same text for the same container.
    """
    if state == "running":
        text = "Up"
    elif state in ("exited", "dead") and exit_code is not None:
        text = f"{state.capitalize()} ({exit_code})"
    else:
        text = state.capitalize()
    return f"{text} ({health})" if health else text


def platform_facts() -> HostFacts:
    """What this machine says about itself without an engine (fallback while the engine is down)."""
    uname = platform.uname()
    memory = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        memory = 0
    return HostFacts(
        hostname=uname.node,
        arch=normalise_arch(uname.machine),
        os=uname.system.lower(),
        kernel=uname.release,
        cpus=os.cpu_count() or 0,
        memory_bytes=memory,
        engine_version="",
    )


class DockerEngine:
    """One Docker engine at `docker_host` (``unix:///path.sock`` or ``tcp://host:port``).

    Safe for one caller thread plus one thread consuming `events` (runtime/streams.py uses one from many threads,
    with a `pool_size` of connections to match: every open stream holds one).
    """

    def __init__(
        self, docker_host: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, pool_size: int | None = None
    ) -> None:
        self.docker_host = docker_host
        self._timeout = timeout
        self._pool_size = pool_size
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        # docker_id -> restart policy name, learnt from inspect. A container whose policy is "no" never gets a
        # restart count above 0, so the snapshot need not inspect it again (see `containers`).
        self._policies: dict[str, str] = {}

    # -- plumbing

    def _connect(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                extra = {} if self._pool_size is None else {"max_pool_size": self._pool_size}
                self._client = docker.DockerClient(
                    base_url=self.docker_host, version="auto", timeout=self._timeout, **extra
                )
            return self._client

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a half-broken client must never mask the original error
                log.debug("error closing docker client", exc_info=True)

    def call(self, what: str, fn: Callable[[docker.DockerClient], T]) -> T:
        """Run `fn` with this engine's SDK client (for the other modules of `runtime/`, e.g. containers.py).

        Transport failures and API errors become `Unavailable` naming `what`; docker's NotFound passes through, so
        `fn` should translate the API errors it expects into Corral errors itself.
        """
        return self._call(what, fn)

    def _call(self, what: str, fn: Callable[[docker.DockerClient], T]) -> T:
        """Run `fn` with a connected client, translating every transport or API failure into `Unavailable`."""
        try:
            return fn(self._connect())
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            raise Unavailable(
                f"docker engine at {self.docker_host} failed to {what}: {exc.explanation or exc}"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            self._drop_client()
            raise Unavailable(f"docker engine at {self.docker_host} is not reachable ({what}): {exc}") from exc

    # -- queries

    def ping(self) -> bool:
        try:
            return bool(self._call("ping", lambda c: c.ping()))
        except Unavailable:
            return False

    def facts(self) -> HostFacts:
        """Facts from the engine's info; this machine's own view fills any field the engine leaves empty."""
        info: dict[str, Any] = self._call("read engine info", lambda c: c.info())
        local = platform_facts()
        return HostFacts(
            hostname=str(info.get("Name") or local.hostname),
            arch=normalise_arch(str(info.get("Architecture") or "")) or local.arch,
            os=str(info.get("OperatingSystem") or local.os),
            kernel=str(info.get("KernelVersion") or local.kernel),
            cpus=int(info.get("NCPU") or local.cpus),
            memory_bytes=int(info.get("MemTotal") or local.memory_bytes),
            engine_version=str(info.get("ServerVersion") or ""),
        )

    def container(self, docker_id: str) -> ObservedContainer | None:
        """One container by id or name, or None when the engine does not know it (any more)."""
        try:
            data: dict[str, Any] = self._call("inspect a container", lambda c: c.api.inspect_container(docker_id))
        except docker.errors.NotFound:
            return None
        return self._from_inspect(data)

    def containers(self, *, restart_counts: bool = True) -> list[ObservedContainer]:
        """Every container on the engine, running or not.

        One list call gives everything but the restart count. Only a restart policy can raise a restart count
        above 0, so a container is inspected once to learn its policy and again only if it has one;
        `container()` (called on each event, including ``update`` which may change the policy) refreshes what
        was learnt. With `restart_counts=False` (convergence needs none) the list call is all, counts read 0.
        """
        rows: list[dict[str, Any]] = self._call("list containers", lambda c: c.api.containers(all=True))
        if not restart_counts:
            return [self._from_list(row) for row in rows]
        with self._lock:
            live = {row["Id"] for row in rows}
            for gone in set(self._policies) - live:
                del self._policies[gone]
            known = dict(self._policies)
        result: list[ObservedContainer] = []
        for row in rows:
            docker_id = str(row["Id"])
            if known.get(docker_id, "?") in _NO_POLICY:
                result.append(self._from_list(row))
                continue
            observed = self.container(docker_id)
            if observed is not None:  # None: removed between list and inspect
                result.append(observed)
        return result

    def _from_list(self, row: dict[str, Any]) -> ObservedContainer:
        names = row.get("Names") or [""]
        state = str(row.get("State", ""))
        raw_status = str(row.get("Status", ""))
        exit_code = _exit_code_from_status(state, raw_status)
        health = _LIST_HEALTH.search(raw_status)
        health_status = health.group(1).removeprefix("health: ") if health else ""
        return ObservedContainer(
            docker_id=str(row["Id"]),
            name=str(names[0]).lstrip("/"),
            image=str(row.get("Image", "")),
            state=state,
            status=_status(state, exit_code, health_status),
            exit_code=exit_code,
            restart_count=0,
            labels=_labels(row.get("Labels")),
            created=_parse_time(row.get("Created")),
            ip=_first_ip(row.get("NetworkSettings")),
            health=_DOCKER_HEALTH.get(health_status, ""),
        )

    def _from_inspect(self, data: dict[str, Any]) -> ObservedContainer:
        state: dict[str, Any] = data.get("State") or {}
        config: dict[str, Any] = data.get("Config") or {}
        host_config: dict[str, Any] = data.get("HostConfig") or {}
        policy = host_config.get("RestartPolicy") or {}
        docker_id = str(data["Id"])
        with self._lock:
            self._policies[docker_id] = str(policy.get("Name") or "")
        status_name = str(state.get("Status", ""))
        raw_exit = state.get("ExitCode")
        exit_code = int(raw_exit) if status_name in ("exited", "dead") and raw_exit is not None else None
        health = state.get("Health")
        health_status = str(health.get("Status") or "") if isinstance(health, dict) else ""
        health_status = "" if health_status == "none" else health_status
        return ObservedContainer(
            docker_id=docker_id,
            name=str(data.get("Name", "")).lstrip("/"),
            image=str(config.get("Image") or data.get("Image", "")),
            state=status_name,
            status=_status(status_name, exit_code, health_status),
            exit_code=exit_code,
            restart_count=int(data.get("RestartCount") or 0),
            labels=_labels(config.get("Labels")),
            # Whole seconds, as the list API reports them: both paths give equal values for one container.
            created=float(int(_parse_time(data.get("Created")))),
            ip=_first_ip(data.get("NetworkSettings")),
            health=_DOCKER_HEALTH.get(health_status, ""),
        )

    # -- events

    def events(self, stop: threading.Event) -> Iterator[tuple[str, str]]:
        """Subscribe to container and image events and return a blocking iterator of ``(action, docker_id)``
        (for image events: ``(IMAGE_EVENT_PREFIX + action, image reference or id)``).

        The subscription is made before this returns (so a snapshot taken afterwards misses nothing) and
        raises `Unavailable` if the engine cannot be reached. The iterator ends when `stop` is set or the engine goes
        away; it is meant to be consumed in its own thread.
        """
        kinds = {"type": ["container", "image"]}
        stream = self._call("subscribe to events", lambda c: c.api.events(decode=True, filters=kinds))
        return self._iterate_events(stream, stop)

    def _iterate_events(self, stream: Any, stop: threading.Event) -> Iterator[tuple[str, str]]:
        finished = threading.Event()

        def close_on_stop() -> None:
            while not finished.is_set():
                if stop.wait(0.25):
                    try:
                        stream.close()
                    except Exception:  # already closed by the engine going away
                        log.debug("error closing the event stream", exc_info=True)
                    return

        closer = threading.Thread(target=close_on_stop, name="docker-events-closer", daemon=True)
        closer.start()
        try:
            for event in stream:
                if stop.is_set():
                    return
                if not isinstance(event, dict):
                    continue
                action = event.get("Action") or event.get("status") or ""
                docker_id = event.get("id") or (event.get("Actor") or {}).get("ID") or ""
                if event.get("Type") == "image":
                    action = IMAGE_EVENT_PREFIX + str(action)
                if action and docker_id:
                    yield str(action), str(docker_id)
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            OSError,
            ValueError,
        ) as exc:
            if not stop.is_set():
                log.warning("docker engine at %s: event stream ended: %s", self.docker_host, exc)
        finally:
            finished.set()
            try:
                stream.close()
            except Exception:
                log.debug("error closing the event stream", exc_info=True)

    def close(self) -> None:
        self._drop_client()


def _first_ip(settings: object) -> str:
    """The container's address on its first network that has one ("" for host/none networking or when stopped)."""
    networks = settings.get("Networks") if isinstance(settings, dict) else None
    if not isinstance(networks, dict):
        return ""
    for name in sorted(networks):
        network = networks[name]
        address = network.get("IPAddress") if isinstance(network, dict) else None
        if isinstance(address, str) and address:
            return address
    return ""
