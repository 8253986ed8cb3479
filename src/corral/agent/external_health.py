"""Health checks of external services' IPs (issue 19 item 4), as Rancher 1.x's network agent did: an external IP that
fails its service's check leaves this host's DNS answers and load balancer backends until it passes again.

Why every agent probes (and not only the hosts running an LB or a client of the service): every agent serves DNS
for every container of its host, so each one needs a verdict for every checked IP; probing from the host that
answers also sees that host's own path to the IP, and needs no verdict sent over the wire or agreed between hosts.
The cost is one small probe per checked IP and interval on each host.

Why split in two, like agent/health.py whose prober and state machine it reuses: `checked_ips` and `healthy_view`
are pure (property-tested), `ExternalHealth` owns the probing. It sits between the network manager and its
DNS/LB components: each `network` message reaches them through `healthy_view`, and so does each change of verdict.
An IP without a verdict yet (initializing) counts as healthy (Rancher's default); one with no success within the
check's initializing timeout turns unhealthy. When every IP of a service is unhealthy the service has none: DNS
answers its name NXDOMAIN (a Corral name with no address, never forwarded) and the LB's backend has no server
(HAProxy answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from corral.agent.health import (
    MAX_DETAIL,
    HealthState,
    ProbeFn,
    after_probe,
    after_tick,
    initial_state,
    probe,
    start_due_probes,
)
from corral.agent.network import NetworkComponent
from corral.model.health import UNHEALTHY, HealthCheck
from corral.model.network import NetworkState
from corral.model.virtual import Virtual

log = logging.getLogger("corral.agent.external_health")

Key = tuple[str, str, str]  # (stack, service, external IP)


# -- pure ------------------------------------------------------------------------------------------------------


def checked_ips(state: NetworkState) -> dict[Key, HealthCheck]:
    """Each external IP whose service has a port check, with that check."""
    checked: dict[Key, HealthCheck] = {}
    for service in state.services:
        virtual = Virtual.from_dict(service.virtual)
        if virtual is None or virtual.kind != "external" or virtual.health_check is None:
            continue
        if not virtual.health_check.probes:
            continue
        for ip in virtual.external_ips:
            checked[(service.stack, service.name, ip)] = virtual.health_check
    return checked


def healthy_view(state: NetworkState, unhealthy: Collection[Key]) -> NetworkState:
    """`state` without the unhealthy external IPs: what DNS answers and the load balancers send to."""
    if not unhealthy:
        return state
    services = []
    for service in state.services:
        virtual = Virtual.from_dict(service.virtual)
        if virtual is not None and virtual.kind == "external" and virtual.external_ips:
            kept = [ip for ip in virtual.external_ips if (service.stack, service.name, ip) not in unhealthy]
            if len(kept) != len(virtual.external_ips):
                service = dataclasses.replace(service, virtual={**service.virtual, "external_ips": kept})
        services.append(service)
    return dataclasses.replace(state, services=tuple(services))


# -- the prober ------------------------------------------------------------------------------------------------


@dataclass
class _Tracked:
    check: HealthCheck
    state: HealthState
    next_probe: float
    probing: bool = False


class ExternalHealth:
    """A network component: probes the checked external IPs of each state and hands `downstream` the healthy view."""

    def __init__(
        self,
        downstream: Sequence[NetworkComponent],
        probe_fn: ProbeFn = probe,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._downstream = list(downstream)
        self._probe = probe_fn
        self._clock = clock
        self._state: NetworkState | None = None
        self._tracked: dict[Key, _Tracked] = {}
        self._handed: NetworkState | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()  # the event loop's clock too

    @property
    def statuses(self) -> dict[Key, str]:
        """Each checked IP's health state (model/health.py)."""
        return {key: tracked.state.status for key, tracked in self._tracked.items()}

    @property
    def unhealthy(self) -> frozenset[Key]:
        return frozenset(key for key, tracked in self._tracked.items() if tracked.state.status == UNHEALTHY)

    def update(self, state: NetworkState) -> None:
        self._state = state
        checked = checked_ips(state)
        now = self.now()
        for key in set(self._tracked) - set(checked):
            del self._tracked[key]
        for key, check in checked.items():
            tracked = self._tracked.get(key)
            if tracked is None:
                self._tracked[key] = _Tracked(check, initial_state(now), next_probe=now)
            elif tracked.check != check:
                tracked.check = check
                tracked.next_probe = min(tracked.next_probe, now + check.interval_ms / 1000)
        self._hand_down()
        self._wake.set()

    def _hand_down(self) -> None:
        if self._state is None:
            return
        view = healthy_view(self._state, self.unhealthy)
        if view == self._handed:
            return
        self._handed = view
        for component in self._downstream:
            try:
                component.update(view)
            except Exception:
                log.exception("network component %r failed to take the new state", component)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe what is due, apply the checks' timeouts, hand down changes; until `stop` is set."""
        try:
            while not stop.is_set():
                now = self.now()
                for key, tracked in list(self._tracked.items()):
                    self._apply(key, tracked, after_tick(tracked.check, tracked.state, now))
                next_due = start_due_probes(self._tracked, now, self._probe_one, self._tasks, "external-health")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(next_due - self.now(), 0.01))
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _probe_one(self, key: Key, tracked: _Tracked) -> None:
        check = tracked.check
        try:
            ok, detail = await self._probe(
                key[2], check.port or 0, check.request_line, check.response_timeout_ms / 1000
            )
            now = self.now()
            tracked.next_probe = now + check.interval_ms / 1000
            if self._tracked.get(key) is tracked:
                self._apply(key, tracked, after_probe(check, tracked.state, ok, detail[:MAX_DETAIL], now))
        except Exception:  # one probe must never end the prober
            log.exception("health probe of external IP %s failed", key[2])
        finally:
            tracked.probing = False
            self._wake.set()

    def _apply(self, key: Key, tracked: _Tracked, state: HealthState) -> None:
        before = tracked.state.status
        tracked.state = state
        if state.status == before:
            return
        stack, service, ip = key
        reason = f": {state.reason}" if state.reason else ""
        log.info("external service %s/%s: %s is %s%s", stack, service, ip, state.status, reason)
        if UNHEALTHY in (before, state.status):
            self._hand_down()
