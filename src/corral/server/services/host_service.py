"""Host lifecycle: registration with a token, provisioning with the local driver, and removal.

Why a service apart from the routes: removal and provisioning touch four things that must stay consistent (the
store, the agent hub, the driver's machine resources and the event stream) and are also used when an environment
is deleted. Provisioning runs in a worker thread with a deadline; its outcome is always written as a state
(`registering` then `active`, or `error` with the failed step) so a host never sits in `provisioning` forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from corral.build import current_build_id
from corral.config import Settings
from corral.model.credentials import CREDENTIALS_FILE, AgentCredentials
from corral.model.entities import Environment, Host, HostFacts, HostState, KeyKind
from corral.model.errors import Conflict, CorralError, InvalidInput, NotFound, Unavailable
from corral.model.join_token import parse_join_token
from corral.server.hub.hub import AgentHub
from corral.server.shared.events import EventBus
from corral.server.views.resources import host_view
from corral.store.repository import Store

if TYPE_CHECKING:
    from corral.provision.local import LocalHostDriver
    from corral.server.security.tls import ServerTls

log = logging.getLogger("corral.hosts")

DRIVERS = ("local",)
_NOT_SUPERVISED = frozenset({HostState.PROVISIONING, HostState.REMOVING, HostState.ERROR})


def write_credentials(state_dir: Path, credentials: AgentCredentials) -> None:
    """Write credentials.json atomically with mode 0600 in a 0700 directory."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".credentials-")
    with os.fdopen(fd, "w") as handle:
        handle.write(credentials.to_json())
    os.chmod(tmp, 0o600)
    os.replace(tmp, state_dir / CREDENTIALS_FILE)


class HostService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        hub: AgentHub,
        settings: Settings,
        driver: LocalHostDriver | None,
        *,
        agent_url: str = "",
        tls: ServerTls | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.hub = hub
        self.settings = settings
        self.driver = driver
        self.agent_url = agent_url  # what local agents dial ("": no local hosts)
        self.tls = tls  # local agents pin its CA (None: plain HTTP)
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # local host names being provisioned or removed: not for the supervisor
        self._local_locks: dict[str, asyncio.Lock] = {}  # local host name -> held by a revive or a removal

    # -- registration with a token ------------------------------------------------------------------------------

    def register(
        self, token: str, name: str, labels: dict[str, str], facts: HostFacts, address: str
    ) -> tuple[Host, str, str]:
        secret_part = parse_join_token(token).secret
        host, access_key, secret = self.store.admit_host(secret_part, name, labels=labels, facts=facts, address=address)
        environment_id = host.environment_id
        self.hub.track(host.id, host.state)
        self.bus.publish("host", "created", host_view(host), environment_id)
        return host, access_key, secret

    async def approve(self, host: Host) -> Host:
        """Admit a pending host: from now on it gets its desired set and overlay peers and takes containers."""
        approved = await run_in_threadpool(self.store.approve_host, host.id)
        self.bus.publish("host", "approved", host_view(approved), approved.environment_id)
        await self.hub.release(approved.id)
        return await run_in_threadpool(self.store.get_host, approved.id)

    # -- local driver -------------------------------------------------------------------------------------------

    def _require_driver(self) -> LocalHostDriver:
        if self.driver is None or not self.agent_url:
            raise Unavailable(
                "the local host driver is not available on this server (it needs root, iproute2 and dockerd; "
                "CORRAL_LOCAL_DRIVER must not be 0)"
            )
        return self.driver

    async def create(
        self, env: Environment, name: str, driver_name: str, labels: dict[str, str], arch: str | None
    ) -> Host:
        if driver_name not in DRIVERS:
            raise InvalidInput(f"unknown driver {driver_name!r}; available: {', '.join(DRIVERS)}", field="driver")
        driver = self._require_driver()
        if await run_in_threadpool(driver.load, name) is not None:
            raise Conflict(f"a local host named {name!r} already exists on this machine", field="name")
        host = await run_in_threadpool(
            self.store.create_host,
            env.id,
            name,
            driver=driver_name,
            state=HostState.PROVISIONING,
            labels=labels,
            driver_options={"arch": arch} if arch else {},
        )
        access_key, secret = await run_in_threadpool(
            self.store.create_api_key, KeyKind.AGENT, host_id=host.id, description=f"agent of {name}"
        )
        credentials = AgentCredentials(
            url=self.agent_url, host_id=host.id, environment_id=env.id, access_key=access_key, secret_key=secret
        )
        self.bus.publish("host", "created", host_view(host), env.id)
        task = asyncio.create_task(self._provision(host, credentials, arch), name=f"provision-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return host

    def agent_state_dir(self, name: str) -> Path:
        """Where the agent of a local host keeps its credentials (outside the driver's host directory, which the
        driver wipes when it finds leftovers of an earlier host of the same name)."""
        return self.settings.data_dir / "agents" / name

    def agent_command(self, state_dir: Path) -> list[str]:
        """The agent of a local host pins the server's CA by its digest, as an agent joining from afar does."""
        command = [sys.executable, "-m", "corral", "agent", "--url", self.agent_url, "--state-dir", str(state_dir)]
        return command + (["--ca-digest", self.tls.ca_digest] if self.tls is not None else ["--insecure"])

    async def _provision(self, host: Host, credentials: AgentCredentials, arch: str | None) -> None:
        self._busy.add(host.name)
        try:
            await self._provision_unguarded(host, credentials, arch)
        finally:
            self._busy.discard(host.name)

    async def _provision_unguarded(self, host: Host, credentials: AgentCredentials, arch: str | None) -> None:
        driver = self._require_driver()
        state_dir = self.agent_state_dir(host.name)
        try:
            await run_in_threadpool(write_credentials, state_dir, credentials)
            work = asyncio.to_thread(driver.create, host.name, self.agent_command(state_dir), arch=arch)
            record = await asyncio.wait_for(work, timeout=self.settings.provisioning_timeout_seconds)
        except Exception as exc:
            reason = exc.message if isinstance(exc, CorralError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, TimeoutError):
                reason = f"provisioning did not finish within {self.settings.provisioning_timeout_seconds:g} s"
            log.error("provisioning host %s failed: %s", host.name, reason)
            await self._set_state(host.id, HostState.ERROR, reason)
            await run_in_threadpool(self._remove_machine_quietly, host.name)
            return
        options: dict[str, Any] = {"arch": arch} if arch else {}
        options.update(netns=record.netns, docker_host=record.docker_host, address=record.address)
        updated = await run_in_threadpool(
            self.store.update_host,
            host.id,
            state=HostState.REGISTERING,
            driver_options=options,
            address=record.address,
        )
        self.hub.track(host.id, HostState.REGISTERING)
        self.bus.publish("host", "updated", host_view(updated), host.environment_id)

    async def _set_state(self, host_id: str, state: HostState, reason: str) -> None:
        try:
            host = await run_in_threadpool(self.store.update_host, host_id, state=state, state_reason=reason)
        except CorralError:
            return
        self.bus.publish("host", "updated", host_view(host), host.environment_id)

    def _remove_machine_quietly(self, name: str) -> None:
        if self.driver is None:
            return
        try:
            self.driver.remove(name)
            shutil.rmtree(self.agent_state_dir(name), ignore_errors=True)
        except Exception:
            log.exception("cleaning up local host %s failed", name)

    # -- removal ------------------------------------------------------------------------------------------------

    async def remove(self, host: Host) -> None:
        """Disconnect the agent, tear down what a driver built, then forget the host. Idempotent."""
        await self._set_state(host.id, HostState.REMOVING, "removal requested")
        await self.hub.kick(host.id)
        if host.driver == "local":
            driver = self._require_driver()
            async with self._local_lock(host.name):  # a revive already under way finishes first (then is undone)
                self._busy.add(host.name)
                try:
                    await run_in_threadpool(driver.remove, host.name)
                    await run_in_threadpool(shutil.rmtree, self.agent_state_dir(host.name), True)
                finally:
                    self._busy.discard(host.name)
                    self._local_locks.pop(host.name, None)
        await run_in_threadpool(self.store.delete_host, host.id)
        self.bus.publish("host", "removed", {**host_view(host), "state": "removed"}, host.environment_id)

    async def remove_environment(self, env: Environment) -> None:
        for host in await run_in_threadpool(self.store.list_hosts, env.id):
            await self.remove(host)
        await run_in_threadpool(self.store.delete_environment, env.id)

    # -- supervision of local hosts -----------------------------------------------------------------------------

    async def supervise(self) -> None:
        """Keep local hosts running, as a machine's init system would: after a server restart, a reboot or a
        crash, bring back a dead dockerd or agent. Runs until cancelled."""
        interval = self.settings.local_supervise_seconds
        while interval > 0:
            try:
                await self.revive_local_hosts()
            except Exception:  # the supervisor must outlive any one failure
                log.exception("supervising local hosts failed")
            await asyncio.sleep(interval)

    async def _restart_if_outdated(self, host: Host, driver: LocalHostDriver) -> None:
        """A local agent running other code than what is installed now (Corral was updated since it started) is
        restarted, so that it understands the server; its containers are not touched."""
        running = self.hub.agent_version(host.id)
        if not running or not self.settings.restart_outdated_agents:
            return
        installed = await run_in_threadpool(current_build_id)
        if running == installed:
            return
        log.warning(
            "local host %s: its agent runs %s, the installed code is %s; restarting it", host.name, running, installed
        )
        command = self.agent_command(self.agent_state_dir(host.name))
        try:
            await run_in_threadpool(driver.start_agent, host.name, command)
        except CorralError as exc:
            log.error("%s", exc.message)

    async def revive_local_hosts(self) -> None:
        driver = self.driver
        if driver is None or not self.agent_url:
            return
        for listed in await run_in_threadpool(self.store.list_hosts):
            if listed.driver != "local" or listed.name in self._busy or listed.state in _NOT_SUPERVISED:
                continue
            async with self._local_lock(listed.name):
                # the host as it is now: a removal that began since the list must not see it built again
                host = await run_in_threadpool(self._still_supervised, listed.id)
                if host is None or host.name in self._busy:
                    continue
                await self._revive(host, driver)

    async def _revive(self, host: Host, driver: LocalHostDriver) -> None:
        record = await run_in_threadpool(driver.load, host.name)
        if record is None:
            return
        if driver.dockerd_alive(record) and driver.agent_alive(record):
            await self._restart_if_outdated(host, driver)
            return
        log.warning("local host %s: dockerd or agent is not running; starting them again", host.name)
        command = self.agent_command(self.agent_state_dir(host.name))
        try:
            await run_in_threadpool(driver.revive, host.name, command)
        except CorralError as exc:
            log.error("%s", exc.message)

    def _still_supervised(self, host_id: str) -> Host | None:
        try:
            host = self.store.get_host(host_id)
        except NotFound:
            return None
        return None if host.state in _NOT_SUPERVISED else host

    def _local_lock(self, name: str) -> asyncio.Lock:
        """Held while the supervisor revives a local host and while it is removed: never both at once."""
        return self._local_locks.setdefault(name, asyncio.Lock())
