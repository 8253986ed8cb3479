"""Volumes of an environment as the API shows and changes them (issue 17 item 4): built from the hosts' reports
(model/volumes.py), created and removed on hosts through their agents (`volume` requests), and a removed stack's
volumes removed once its containers are gone, unless the stack was removed with `keep_volumes`.

Why a service with a loop: a stack's containers go asynchronously (the agents converge); its volumes can only go
after them. The pending removals live in memory: a server restarted meanwhile leaves them listed (`inactive`) for
`corral volume rm`. A stack created again under the same name cancels its pending removal (its data is its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping

from starlette.concurrency import run_in_threadpool

from corral.model import protocol
from corral.model.entities import Host, HostState
from corral.model.errors import Conflict, CorralError, InvalidInput, NotFound, Unavailable
from corral.model.volumes import (
    ENVIRONMENT_LABEL,
    SCOPE_LABEL,
    HostVolumes,
    Volume,
    environment_volumes,
)
from corral.server.hub.hub import AgentHub
from corral.store.repository import Store
from corral.store.stacks import StackStore

log = logging.getLogger("corral.server.volumes")

REQUEST_SECONDS = 30.0  # an agent that does not answer a `volume` request in time (or too old to know it)
SWEEP_SECONDS = 2.0
# A removed stack none of whose volumes was ever reported is done only after this long: a volume its containers made
# moments before the removal, or one on a host reconnecting, may not be in a report yet.
UNSEEN_SECONDS = 120.0


class VolumeService:
    def __init__(self, store: Store, stacks: StackStore, hub: AgentHub) -> None:
        self.store = store
        self.stacks = stacks
        self.hub = hub
        self.removing: set[tuple[str, str]] = set()  # (environment id, name) while a removal runs
        # (environment id, stack name) whose volumes go -> when (monotonic) the stack was removed
        self.pending_stacks: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    # -- reading

    def usable(self, host: Host) -> bool:
        return host.state is HostState.ACTIVE and self.hub.is_connected(host.id)

    def of_environment(self, environment_id: str) -> tuple[Volume, ...]:
        hosts = self.store.list_hosts(environment_id, container_counts=False)
        removing = {name for env, name in self.removing if env == environment_id}
        return environment_volumes(
            (HostVolumes(h.id, h.name, self.usable(h), h.volumes) for h in hosts), removing=removing
        )

    def get(self, environment_id: str, name: str) -> Volume:
        found = next((v for v in self.of_environment(environment_id) if v.name == name), None)
        if found is None:
            raise NotFound(f"no host of this environment holds a volume {name!r}", field="name")
        return found

    # -- changing

    async def create(
        self,
        environment_id: str,
        name: str,
        *,
        driver: str,
        driver_opts: Mapping[str, str],
        host_refs: Iterable[str] | None,
    ) -> dict[str, str]:
        """Create an environment-scoped volume on the hosts named (every usable host when None). Returns each
        host's name -> "" (created) or the error; Conflict when no host could take it."""
        hosts = await run_in_threadpool(self.store.list_hosts, environment_id, container_counts=False)
        if host_refs is None:
            chosen = [h for h in hosts if self.usable(h)]
            if not chosen:
                raise Conflict("no host of this environment is active and connected", field="hosts")
        else:
            by_ref = {h.id: h for h in hosts} | {h.name: h for h in hosts}
            chosen = []
            for ref in host_refs:
                host = by_ref.get(ref)
                if host is None:
                    raise InvalidInput(f"hosts: no host {ref!r} in this environment", field="hosts")
                if not self.usable(host):
                    raise Conflict(f"hosts: host {host.name} is {host.state.value} or not connected", field="hosts")
                if host not in chosen:
                    chosen.append(host)
            if not chosen:
                raise InvalidInput("hosts: name at least one host, or leave it out for every host", field="hosts")
        labels = {ENVIRONMENT_LABEL: environment_id, SCOPE_LABEL: "environment"}
        request = {"action": "create", "name": name, "driver": driver, "driver_opts": dict(driver_opts)}
        results = await asyncio.gather(*(self._ask(h, {**request, "labels": labels}) for h in chosen))
        outcome = {h.name: error for h, error in zip(chosen, results, strict=True)}
        if all(outcome.values()):
            raise Conflict(
                "volume not created: " + "; ".join(f"{host}: {error}" for host, error in sorted(outcome.items())),
                field="name",
            )
        return outcome

    async def remove(self, environment_id: str, name: str) -> None:
        """Remove the volume from every host that holds it; refused (Conflict, nothing removed) while a container
        mounts it or while a host that holds it does not answer."""
        volume = await run_in_threadpool(self.get, environment_id, name)
        if volume.containers:
            raise Conflict(f"volume {name!r} is in use by {', '.join(volume.containers)}", field="name")
        silent = [h.host_name for h in volume.holdings if not h.usable]
        if silent:
            raise Conflict(
                f"volume {name!r} is also on {', '.join(silent)}, which does not answer: remove it once the host is "
                "back (or remove the host)",
                field="name",
            )
        key = (environment_id, name)
        if key in self.removing:
            raise Conflict(f"volume {name!r} is being removed already", field="name")
        self.removing.add(key)
        try:
            hosts = {h.id: h for h in await run_in_threadpool(self.store.list_hosts, environment_id)}
            holders = [hosts[h.host_id] for h in volume.holdings if h.host_id in hosts]
            errors = await asyncio.gather(*(self._ask(h, {"action": "remove", "name": name}) for h in holders))
        finally:
            self.removing.discard(key)
        failed = [f"{h.name}: {e}" for h, e in zip(holders, errors, strict=True) if e]
        if failed:
            raise Conflict(f"volume {name!r} not removed everywhere: {'; '.join(failed)}", field="name")

    async def _ask(self, host: Host, request: dict[str, object]) -> str:
        """Send one `volume` request to a host's agent; "" when done, else why not."""
        try:
            stream = await self.hub.relay.open_stream(host.id, protocol.VOLUME, request)
        except Unavailable as exc:
            return exc.message
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                while True:
                    message = await self.hub.relay.next_message(stream)
                    if message.type == protocol.END:
                        error = message.data.get("error")
                        return str(error) if error else ""
        except TimeoutError:
            return f"the agent did not answer within {REQUEST_SECONDS:.0f} s (an agent older than volumes?)"
        finally:
            await self.hub.relay.close_stream(stream)

    # -- volumes of removed stacks

    def stack_removed(self, environment_id: str, stack: str, *, keep_volumes: bool) -> None:
        if not keep_volumes:
            self.pending_stacks[(environment_id, stack)] = time.monotonic()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_loop(), name="volume-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except CorralError as exc:  # the database or an agent: the next round tries again
                log.debug("volume sweep: %s", exc.message)

    async def sweep(self) -> None:
        """Remove the unused volumes of removed stacks; a stack's removal is done when none of its volumes is left
        (or a stack of that name exists again)."""
        for (environment_id, stack), removed_at in sorted(self.pending_stacks.items()):
            existing = await run_in_threadpool(self.stacks.list_stacks, environment_id)
            if any(s.name == stack for s in existing):
                self.pending_stacks.pop((environment_id, stack), None)
                continue
            volumes = [v for v in await run_in_threadpool(self.of_environment, environment_id) if v.stack == stack]
            volumes = [
                v
                for v in volumes
                if v.labels.get(SCOPE_LABEL) in ("stack", "container")
                and v.labels.get(ENVIRONMENT_LABEL) == environment_id
            ]
            if not volumes:
                if time.monotonic() - removed_at > UNSEEN_SECONDS:
                    self.pending_stacks.pop((environment_id, stack), None)
                continue
            self.pending_stacks[(environment_id, stack)] = float("-inf")  # seen: done once none is left
            for volume in volumes:
                if volume.containers or volume.state != "inactive":
                    continue  # its containers are not gone yet, or a host holding it does not answer
                with contextlib.suppress(CorralError):
                    await self.remove(environment_id, volume.name)
                    log.info("removed volume %s of removed stack %s", volume.name, stack)
