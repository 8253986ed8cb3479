"""At most one container per (service, index): which indexes must wait for an old container to stop.

Why a module of its own: a container Corral no longer wants at an index (a slot removed by a scale-down, a move, a
health recreate or a deleted stack; a retired slot stopped by a stop-first upgrade) keeps running until its agent
has stopped it, which takes up to the container's stop timeout. Placing the index's replacement before that, on
another host, runs two containers for one index. So such a container stays known as a *leftover* until it is
observed gone, and a new container of its index is placed only once every leftover of that index is *released*:

- its host is gone or past its grace period (`disconnected`): nothing can be known or done there, and the host's
  agent removes the stale copy when it returns;
- or its agent has converged a desired set in which the slot is not running (`acked`: the agent stops or removes
  a container before it acknowledges such a set, and it never starts it again), and the last report from its
  host does not show the container running.

A server that restarts knows no acknowledgement: every leftover on a connected or reconnecting host waits until
that host's agent has converged a desired set from the new server, so old containers are never assumed gone.
Start-first upgrades are the one exception: their retired containers keep running on purpose, they are not
leftovers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from corral.model.entities import HostState, ObservedContainer
from corral.model.stack import LeftoverRecord, SlotRecord
from corral.orchestrator.scheduling import HostView

# Engine states in which a container does not run (and, once its agent has acknowledged, will not run again).
STOPPED_STATES = frozenset({"exited", "dead", "created"})
# Host states in which nothing can be waited for: the host is past its grace period, or gone.
RELEASING_STATES = frozenset({HostState.DISCONNECTED, HostState.REMOVING, HostState.ERROR})


@dataclass(frozen=True)
class Leftover:
    """A container Corral no longer wants running at (stack, service, index), as last observed."""

    slot_id: str
    name: str  # its Docker name, for the reason shown while its index waits
    stack: str
    service: str
    index: int
    host_id: str
    observed_state: str | None = None  # its host's last report; None: not reported (never created, or gone)
    acked: bool = False  # its agent has converged a desired set without it running


def released(leftover: Leftover, host: HostView | None) -> bool:
    """The leftover no longer counts: its host is gone or disconnected, or its agent stopped it and says so."""
    if host is None or host.state in RELEASING_STATES:
        return True
    stopped = leftover.observed_state is None or leftover.observed_state in STOPPED_STATES
    return leftover.acked and stopped


def waiting_reason(leftover: Leftover, host: HostView | None) -> str:
    where = f" on {host.name}" if host is not None else ""
    return f"waiting for {leftover.name}{where} to stop"


def blocked_indexes(
    leftovers: Iterable[Leftover], hosts: Mapping[str, HostView]
) -> dict[tuple[str, str], dict[int, str]]:
    """(stack, service) -> index -> why a new container of that index must wait (the first leftover, by name)."""
    blocked: defaultdict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for leftover in sorted(leftovers, key=lambda item: (item.name, item.slot_id)):
        host = hosts.get(leftover.host_id)
        if not released(leftover, host):
            blocked[(leftover.stack, leftover.service)].setdefault(leftover.index, waiting_reason(leftover, host))
    return dict(blocked)


def unit_blocked(
    blocked: Mapping[tuple[str, str], Mapping[int, str]], stack: str, members: Iterable[str]
) -> dict[int, str]:
    """The indexes a sidekick unit (a primary and its sidekicks, placed as one) must hold back: any member's."""
    merged: dict[int, str] = {}
    for member in members:
        for index, why in blocked.get((stack, member), {}).items():
            merged.setdefault(index, why)
    return merged


Acked = Callable[[str, str], bool]  # (host id, slot id) -> its agent converged a desired set without it running


def leftovers_of(
    stored: Iterable[LeftoverRecord],
    retired_stopped: Iterable[SlotRecord],
    observed: Mapping[str, Mapping[str, ObservedContainer]],
    acked: Acked,
) -> list[Leftover]:
    """Leftovers as the planner sees them: removed slots kept by the store, and retired slots that a stop-first
    upgrade stopped. `observed` is host id -> slot id -> its container on that host; `acked` answers from the
    server's record of desired sets sent and acknowledged (server/control/occupancy_pass.py)."""
    where = [(i.slot_id, i.name, i.stack, i.service, i.index, i.host_id) for i in stored]
    where += [
        (r.slot.id, r.slot.name, r.slot.stack, r.slot.service, r.slot.index, r.slot.host_id) for r in retired_stopped
    ]
    found: list[Leftover] = []
    for slot_id, name, stack, service, index, host_id in where:
        container = observed.get(host_id, {}).get(slot_id)
        found.append(
            Leftover(
                slot_id=slot_id,
                name=name,
                stack=stack,
                service=service,
                index=index,
                host_id=host_id,
                observed_state=container.state if container is not None else None,
                acked=acked(host_id, slot_id),
            )
        )
    return found


def released_ids(leftovers: Iterable[Leftover], hosts: Mapping[str, HostView], stored: set[str]) -> list[str]:
    """Stored leftovers that no longer count (the store may forget them)."""
    return [item.slot_id for item in leftovers if item.slot_id in stored and released(item, hosts.get(item.host_id))]
