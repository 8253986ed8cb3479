"""Drain before stop (issue 19): a load balancer's target is taken out of HAProxy before its container stops, and
stops only once the requests it is serving have finished (bounded).

Why here, in the agent that stops the container: the server drops a leaving container from every host's `network`
message in the same pass that stops it (a removed slot has no record, a desired-stopped one is not `running`), and
every LB host reloads HAProxy from that message, but nothing orders that message before the target host's `desired`
message. So before stopping a container of a service some LB routes to, the agent waits until the network state
its own LB component has applied (pushed to this host's HAProxys, not merely received) no longer offers the
container (the other LB hosts get the same message at the same time), gives them `settle_seconds` to reload, then
waits until the container has had no established connection on a port it listens on for `QUIET_POLLS` polls in a
row (HAProxy's old workers finishing their requests; a worker that has not reloaded yet keeps opening new ones),
at most `bound_seconds` in all. An LB container of this host
drains the same way behind the host ports the agent forwards (network/lb_ports.py): it stops once they send new
connections elsewhere (`fronted` false) and the connections it holds have ended. Other containers stop at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from corral.model.lb import lb_config_from_dict
from corral.model.network import NetworkState
from corral.model.network_scope import selected
from corral.model.virtual import Virtual

log = logging.getLogger("corral.agent.drain")

SETTLE_SECONDS = 1.0  # for the LB hosts to reload HAProxy after the network message that drops the target
BOUND_SECONDS = 30.0  # the longest a stop waits for the network message and the target's open requests
POLL_SECONDS = 0.2
QUIET_POLLS = 3  # consecutive polls without a connection: one empty sample can fall between two short requests
_LISTEN, _ESTABLISHED = "0A", "01"


def target_services(state: NetworkState) -> set[tuple[str, str]]:
    """(stack, service) of every service an LB of the environment routes to, aliases followed (pure)."""
    lbs = [s for s in state.services if s.lb]
    if not lbs:
        return set()
    found: set[tuple[str, str]] = set()
    for lb in lbs:
        for rule in lb_config_from_dict(lb.lb).port_rules:
            if rule.selector:
                found |= {(s.stack, s.name) for s in state.services if selected(rule.selector, s)}
            elif rule.service:
                stack, _, name = rule.service.rpartition("/")
                found.add((stack or lb.stack, name))
    for service in state.services:
        virtual = Virtual.from_dict(service.virtual)
        if virtual is not None and virtual.kind == "alias" and (service.stack, service.name) in found:
            found |= set(virtual.target_keys(service.stack))
    return {(stack.lower(), name.lower()) for stack, name in found}


def offered(state: NetworkState, name: str) -> bool:
    """Whether the network state still lists container `name` as running and healthy: an LB may send it requests."""
    return any(c.name == name and c.running and c.healthy for c in state.containers)


def is_balancer(state: NetworkState, name: str) -> bool:
    """Whether the container called `name` belongs to an LB service."""
    lbs = {(s.stack, s.name) for s in state.services if s.lb}
    return any((c.stack, c.service) in lbs for c in state.containers if c.name == name)


def is_target(state: NetworkState, name: str) -> bool:
    """Whether the container called `name` belongs to a service an LB routes to (by the service's name prefix)."""
    for record in state.containers:
        if record.name == name:
            return (record.stack.lower(), record.service.lower()) in target_services(state)
    lowered = name.lower()
    return any(lowered.startswith(f"{stack}-{service}-") for stack, service in target_services(state))


def open_connections(tables: Iterable[str]) -> int:
    """Established TCP connections on a port the namespace listens on, from /proc/PID/net/tcp{,6} texts (pure)."""
    rows = [line.split() for text in tables for line in text.splitlines()[1:]]
    rows = [row for row in rows if len(row) > 3]
    listening = {row[1].rsplit(":", 1)[1] for row in rows if row[3] == _LISTEN}
    return sum(1 for row in rows if row[3] == _ESTABLISHED and row[1].rsplit(":", 1)[1] in listening)


def listening_ports(tables: Iterable[str]) -> set[int]:
    """The TCP ports a namespace listens on, from /proc/PID/net/tcp{,6} texts (pure)."""
    rows = [line.split() for text in tables for line in text.splitlines()[1:]]
    return {int(row[1].rsplit(":", 1)[1], 16) for row in rows if len(row) > 3 and row[3] == _LISTEN}


def read_tables(pid: int) -> list[str]:
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append(Path(f"/proc/{pid}/net/{name}").read_text())
        except OSError:
            continue
    return tables


class Drainer:
    """Called by the converger before it stops or removes a container (blocking, on its apply threads)."""

    def __init__(
        self,
        state: Callable[[], NetworkState | None],
        pid_of: Callable[[str], int],
        *,
        fronted: Callable[[str], bool] = lambda _: False,
        settle_seconds: float = SETTLE_SECONDS,
        bound_seconds: float = BOUND_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        tables: Callable[[int], list[str]] = read_tables,
    ) -> None:
        self._state = state
        self._pid_of = pid_of
        self._fronted = fronted
        self.settle_seconds = settle_seconds
        self.bound_seconds = bound_seconds
        self._clock = clock
        self._sleep = sleep
        self._tables = tables

    def drain(self, docker_id: str, name: str) -> float:
        """Wait until container `name` may stop; the seconds waited (0 when it is no LB target or not running)."""
        state = self._state()
        if state is None or not name:
            return 0.0
        target, balancer = is_target(state, name), is_balancer(state, name) or self._fronted(name)
        if not (target or balancer):
            return 0.0
        pid = self._pid_of(docker_id)
        if pid <= 0:
            return 0.0
        start = self._clock()
        deadline = start + self.bound_seconds

        def still_offered() -> bool:
            now = self._state()
            return (target and now is not None and offered(now, name)) or (balancer and self._fronted(name))

        while still_offered() and self._clock() < deadline:
            self._sleep(POLL_SECONDS)
        self._sleep(max(0.0, min(self.settle_seconds, deadline - self._clock())))
        left = open_connections(self._tables(pid))
        quiet = 0 if left else 1
        while quiet < QUIET_POLLS and self._clock() < deadline:
            self._sleep(POLL_SECONDS)
            left = open_connections(self._tables(pid))
            quiet = 0 if left else quiet + 1
        waited = self._clock() - start
        if left:
            log.warning("draining %s: %d connections still open after %.1f s; stopping it", name, left, waited)
        else:
            log.info("drained %s in %.1f s (no new connections sent to it, none left open)", name, waited)
        return waited
