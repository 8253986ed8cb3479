"""The host process: register once, then stay connected to the server forever (`corral agent`).

Why its shape: the agent must outlive everything around it — server restarts, network loss, Docker engine
restarts — so every failure here becomes a logged retry with jittered backoff, except the few the server
means for good (bad token, name taken, host removed), which end the process with exit code 1 and one clear
line. It changes containers only to converge to a desired set the server sent on the current connection
(session.py, converge.py), so stopping or killing it (even with SIGKILL) leaves them as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import ssl
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from corral.agent.backoff import Backoff
from corral.agent.builds import ImageJobs
from corral.agent.converge import Converger, SlotReporter
from corral.agent.credentials_store import (
    RegistrationRejectedError,
    UntrustedCertificateError,
    credentials_path,
    host_name_from,
    load_credentials,
    register,
    save_credentials,
    set_aside_credentials,
)
from corral.agent.dns import DnsServer
from corral.agent.drain import Drainer
from corral.agent.engine_monitor import EngineMonitor
from corral.agent.external_health import ExternalHealth
from corral.agent.files import ContainerFiles
from corral.agent.health import HealthMonitor
from corral.agent.lb import LoadBalancers
from corral.agent.metadata import MetadataServer
from corral.agent.network import NetworkManager
from corral.agent.pulls import MAX_PARALLEL_PULLS, PULL_TIMEOUT_SECONDS, ImagePuller
from corral.agent.session import Outcome, Session, agent_socket_url
from corral.agent.streams import MAX_STREAMS
from corral.agent.trust import MITM, UntrustedServerError, establish, pin_bundle, pinned_ca_path, refusal
from corral.config import Settings
from corral.model.credentials import AgentCredentials
from corral.model.errors import InvalidInput, Unavailable
from corral.model.join_token import parse_ca_digest, parse_join_token
from corral.model.network import DNS_LISTEN_PORT, METADATA_LISTEN_PORT
from corral.runtime.containers import container_pid
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.streams import ContainerStreams

log = logging.getLogger("corral.agent")

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
STOP_GRACE_SECONDS = 3.0
REPEAT_LOG_SECONDS = 60.0


def configure_logging(level: int = logging.INFO) -> None:
    """Plain `time level message` lines on stderr, unless the caller (the CLI) configured logging already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
    for noisy in ("httpx", "httpcore", "websockets", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_agent(
    *,
    url: str,
    token: str | None,
    state_dir: Path,
    docker_host: str,
    labels: dict[str, str],
    name: str | None,
    settings: Settings,
    ca_digest: str | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
) -> int:
    """Run the agent until SIGTERM/SIGINT (exit 0) or until the server refuses this host for good, or is not the
    server it pinned (exit 1)."""
    configure_logging()
    agent = Agent(
        url=url,
        token=token,
        state_dir=state_dir,
        docker_host=docker_host,
        labels=labels,
        name=name,
        settings=settings,
        ca_digest=ca_digest,
        ca_file=ca_file,
        insecure=insecure,
    )
    try:
        return asyncio.run(agent.main())
    except KeyboardInterrupt:  # only when the signal handlers could not be installed
        return 0


class Agent:
    def __init__(
        self,
        *,
        url: str,
        token: str | None,
        state_dir: Path,
        docker_host: str,
        labels: dict[str, str],
        name: str | None,
        settings: Settings,
        ca_digest: str | None = None,
        ca_file: Path | None = None,
        insecure: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.ca_digest = ca_digest
        self.ca_file = ca_file
        self.insecure = insecure
        self.ssl: ssl.SSLContext | None = None  # the pinned CA's context (trust.py); None for plain HTTP
        self.pinned_digest = ""
        self.state_dir = state_dir
        self.labels = dict(labels)
        self.name = name
        self.settings = settings
        self.monitor = EngineMonitor(DockerEngine(docker_host), max_backoff=settings.agent_max_backoff_seconds)
        # Its own engine client and thread: a long stop grace period never holds up snapshots and deltas.
        # Pulls run beside it on their own engine connections: one stack's slow pull never holds up another stack.
        puller = ImagePuller(DockerEngine(docker_host, timeout=PULL_TIMEOUT_SECONDS, pool_size=MAX_PARALLEL_PULLS + 2))
        files = ContainerFiles.for_state_dir(state_dir)  # secrets (tmpfs), configs and uploads of its containers
        self.converger = Converger(DockerEngine(docker_host), puller=puller, files=files)
        # Logs and exec: one engine client for all streams, a pooled connection for each (they last long).
        self.streams = ContainerStreams(DockerEngine(docker_host, pool_size=MAX_STREAMS + 8))
        self.image_jobs = ImageJobs(DockerEngine(docker_host))  # builds, saves, loads (agent/builds.py)
        self.slot_reporter = SlotReporter()
        self.health = HealthMonitor()
        # The overlay (Docker network + VXLAN), the connectivity check, and DNS/metadata registered on it.
        self.network = NetworkManager(DockerEngine(docker_host), enabled=settings.agent_overlay, state_dir=state_dir)
        self.converger.network_gate = self.network.gate
        # on 169.254.169.250 once the first network message arrived; ports 53 and 80 reach them through NAT
        self.dns = DnsServer(port=DNS_LISTEN_PORT, demand=self.network.demand)
        self.metadata = MetadataServer(port=METADATA_LISTEN_PORT, demand=self.network.demand)
        self.load_balancers = LoadBalancers(DockerEngine(docker_host))  # haproxy.cfg of the LB containers here
        pid_of = functools.partial(container_pid, self.converger.engine)
        lbs = self.load_balancers  # LB targets and LB containers drain before they stop
        self.converger.drain = Drainer(lambda: lbs.applied, pid_of, fronted=lbs.fronted).drain
        # DNS and the LBs see the network state without the external IPs that fail their health check
        self.external_health = ExternalHealth([self.dns, self.load_balancers])
        if settings.agent_overlay:
            self.network.register(self.external_health)
            self.network.register(self.metadata)
        self.stop = asyncio.Event()

    async def main(self) -> int:
        try:
            agent_socket_url(self.url)
            join = parse_join_token(self.token) if self.token else None
            expected = parse_ca_digest(self.ca_digest) if self.ca_digest else None
        except InvalidInput as exc:
            log.error("%s", exc.message)
            return 1
        if join is not None and join.ca_digest:
            if expected and expected != join.ca_digest:
                log.error("--ca-digest %s differs from the join token's %s; %s", expected, join.ca_digest, MITM)
                return 1
            expected = join.ca_digest
        self.token = join.secret if join is not None else None
        installed = self._install_signal_handlers()
        watcher = asyncio.create_task(self.monitor.run(self.stop), name="engine-monitor")
        prober = asyncio.create_task(self.health.run(self.stop), name="health-checks")
        overlay = asyncio.create_task(self.network.run(self.stop), name="overlay")
        dns = asyncio.create_task(self.dns.run(self.stop), name="dns")
        metadata = asyncio.create_task(self.metadata.run(self.stop), name="metadata")
        balancers = asyncio.create_task(self.load_balancers.run(self.stop), name="load-balancers")
        external = asyncio.create_task(self.external_health.run(self.stop), name="external-health")
        try:
            if not await self._trust(expected):
                return 0 if self.stop.is_set() else 1
            credentials = await self._credentials()
            if credentials is None:
                return 0 if self.stop.is_set() else 1
            return await self._stay_connected(credentials)
        finally:
            self.stop.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(watcher, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(prober, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(overlay, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(dns, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(metadata, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(balancers, timeout=STOP_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(external, timeout=STOP_GRACE_SECONDS)
            self.monitor.close()
            self.converger.close()
            self.streams.close()
            self.network.close()
            self.load_balancers.close()
            loop = asyncio.get_running_loop()
            for sig in installed:
                loop.remove_signal_handler(sig)
            log.info("agent stopped")

    def _install_signal_handlers(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no such API
                log.debug("cannot handle %s here", sig.name)
                continue
            installed.append(sig)
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            log.info("received %s; stopping (containers keep running)", sig.name)
        self.stop.set()

    # -- trust

    async def _trust(self, expected: str | None) -> bool:
        """Pin the server's CA (trust.py); False to exit (reason logged)."""
        backoff = Backoff(cap=self.settings.agent_max_backoff_seconds)
        quiet = _RepeatFilter()
        if self.insecure and self.url.lower().startswith("http://"):
            log.warning("--insecure: talking to %s over plain HTTP; credentials cross the network in clear", self.url)
        while not self.stop.is_set():
            try:
                work = establish(
                    self.url, self.state_dir, expected=expected, ca_file=self.ca_file, insecure=self.insecure
                )
                trusted = await _unless_stopped(self.stop, work)
            except UntrustedServerError as exc:
                log.error("%s", exc.message)
                return False
            except (InvalidInput, OSError) as exc:
                log.error("cannot set up TLS: %s", getattr(exc, "message", exc))
                return False
            except Unavailable as exc:
                delay = backoff.next_delay()
                if quiet.should_log(exc.message):
                    log.warning("%s; retrying in %.1fs", exc.message, delay)
                await _sleep_or_stop(self.stop, delay)
                continue
            if trusted is None:
                return False
            self.ssl, self.pinned_digest = trusted
            if self.ssl is not None:
                log.info("server CA pinned: %s (%s)", self.pinned_digest, pinned_ca_path(self.state_dir))
            return True
        return False

    # -- credentials

    async def _credentials(self) -> AgentCredentials | None:
        """The stored credentials, or new ones from a registration; None to exit (reason logged)."""
        path = credentials_path(self.state_dir)
        try:
            stored = load_credentials(self.state_dir)
        except InvalidInput as exc:
            log.error("%s (%s); remove it and register again with --token", exc.message, path)
            return None
        except OSError as exc:
            log.error("cannot read %s: %s", path, exc)
            return None
        if stored is not None:
            if stored.url.rstrip("/") != self.url:
                log.info("credentials were issued by %s; connecting to %s as given", stored.url, self.url)
            if self.token:
                log.info("already registered as host %s (%s); ignoring --token", stored.host_id, path)
            return stored
        if not self.token:
            log.error("this host is not registered yet (no %s): pass --token TOKEN", path)
            return None
        return await self._register(self.token)

    async def _register(self, token: str) -> AgentCredentials | None:
        facts = await self.monitor.facts()
        name = self.name or host_name_from(facts.hostname)
        backoff = Backoff(cap=self.settings.agent_max_backoff_seconds)
        quiet = _RepeatFilter()
        import httpx  # only registering speaks plain HTTP: an agent with credentials never loads it (bench P4)

        async with httpx.AsyncClient(verify=self.ssl if self.ssl is not None else True) as client:
            while not self.stop.is_set():
                try:
                    attempt = register(client, self.url, token=token, name=name, labels=self.labels, facts=facts)
                    credentials = await _unless_stopped(self.stop, attempt)
                    if credentials is None:
                        return None
                except UntrustedCertificateError as exc:
                    log.error("%s", await refusal(self.url, self.pinned_digest, exc.cause))
                    return None
                except RegistrationRejectedError as exc:
                    log.error("%s", _rejection_line(exc, name))
                    return None
                except Unavailable as exc:
                    delay = backoff.next_delay()
                    if quiet.should_log(exc.message):
                        log.warning("registration failed: %s; retrying in %.1fs", exc.message, delay)
                    await _sleep_or_stop(self.stop, delay)
                    continue
                try:
                    path = save_credentials(self.state_dir, credentials)
                except OSError as exc:
                    log.error("registered as host %s but cannot save credentials: %s", credentials.host_id, exc)
                    return None
                log.info(
                    "registered as host %r (%s) in environment %s; credentials saved to %s",
                    name,
                    credentials.host_id,
                    credentials.environment_id,
                    path,
                )
                return credentials
        return None

    # -- the connection

    def _pin_trust(self, pem: str) -> list[str]:
        """A CA rotation's bundle, received over the pinned channel: pinned, and used from the next connection."""
        self.ssl, digests = pin_bundle(self.state_dir, pem)
        self.pinned_digest = digests[0]
        return digests

    async def _stay_connected(self, credentials: AgentCredentials) -> int:
        backoff = Backoff(cap=self.settings.agent_max_backoff_seconds)
        quiet = _RepeatFilter()
        while not self.stop.is_set():
            session = Session(
                url=self.url,
                credentials=credentials,
                labels=self.labels,
                monitor=self.monitor,
                converger=self.converger,
                slot_reporter=self.slot_reporter,
                settings=self.settings,
                stop=self.stop,
                stream_source=self.streams,
                image_jobs=self.image_jobs,
                health=self.health,
                network=self.network,
                ssl_context=self.ssl,
                pin_trust=self._pin_trust if self.ssl is not None else None,
                on_certificates=self.load_balancers.set_certificates,
            )
            running = asyncio.create_task(session.run(), name="agent-session")
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not running.done():
                # Stopping: a welcomed session closes its socket itself; one still connecting is cancelled.
                await asyncio.wait({running}, timeout=STOP_GRACE_SECONDS)
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return 0
            result = running.result()
            if result.outcome is Outcome.STOPPED or self.stop.is_set():
                return 0
            if result.outcome is Outcome.UNTRUSTED and result.certificate_error is not None:
                log.error("%s", await refusal(self.url, self.pinned_digest, result.certificate_error))
                return 1
            if result.outcome is Outcome.REJECTED:
                self.network.teardown()  # removed from its environment: no tunnel or filter is left behind
                moved = set_aside_credentials(self.state_dir)
                kept = f" (old credentials moved to {moved})" if moved else ""
                log.error("%s%s", result.reason, kept)
                return 1
            if result.welcomed:
                backoff.reset()
                quiet.reset()
            delay = backoff.next_delay()
            if quiet.should_log(result.reason):
                log.warning("%s; reconnecting in %.1fs", result.reason, delay)
            await _sleep_or_stop(self.stop, delay)
        return 0


class _RepeatFilter:
    """One line per new failure reason, then a reminder at most every REPEAT_LOG_SECONDS while it persists."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._reason = ""
        self._logged_at = 0.0
        self._suppressed = 0

    def should_log(self, reason: str) -> bool:
        now = time.monotonic()
        if reason == self._reason and now - self._logged_at < REPEAT_LOG_SECONDS:
            self._suppressed += 1
            return False
        if reason == self._reason and self._suppressed:
            log.warning("still failing after %d more attempts", self._suppressed)
        self._reason, self._logged_at, self._suppressed = reason, now, 0
        return True


def _rejection_line(exc: RegistrationRejectedError, name: str) -> str:
    status = exc.http_status
    if status == 401:
        return f"registration token rejected (HTTP 401): {exc.message}"
    if status == 409:
        return f"cannot register as {name!r} (HTTP 409): {exc.message}; choose another name with --name"
    if status == 422:
        return f"registration refused (HTTP 422): {exc.message}"
    return f"registration refused (HTTP {status}): {exc.message}"


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of `work`, or None (with `work` cancelled) if `stop` is set first."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)
