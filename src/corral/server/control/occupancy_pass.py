"""The server's part for "at most one container per (service, index)": the desired-set revisions sent to agents and
what each agent acknowledged, which say whether an old container may still run (orchestrator/occupancy.py decides,
purely, from the store's leftovers, the stopped retired slots of upgrades, the hosts' reports and `acked_by`).

Why apart from orchestration.py: the bookkeeping of desired-set revisions (which slots each revision runs, which
revision each agent has converged to) is its own small state machine; the loop only asks it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from corral.orchestrator.occupancy import Acked

KEPT_REVISIONS = 64  # per host: revisions sent but not yet acknowledged that are remembered


class Revisions:
    """Desired sets sent to agents, by revision, and what their agents acknowledged (in memory on purpose: after a
    restart no acknowledgement is known, so no old container is assumed gone before its agent says so again)."""

    def __init__(self) -> None:
        self._last = 0.0
        self._sent: dict[str, dict[float, frozenset[str]]] = {}  # host id -> revision -> slot ids it runs
        self._last_running: dict[str, float] = {}  # slot id -> the last revision that ran it

    def next(self) -> float:
        """A new revision: the wall clock, strictly increasing (revisions of an earlier server are smaller)."""
        self._last = max(time.time(), self._last + 1e-6)
        return self._last

    def sent(self, host_id: str, revision: float, desired: Iterable[Mapping[str, object]]) -> None:
        running = frozenset(str(d["slot"]["id"]) for d in desired if d.get("running", True))  # type: ignore[index]
        by_revision = self._sent.setdefault(host_id, {})
        by_revision[revision] = running
        for old in sorted(by_revision)[:-KEPT_REVISIONS]:
            del by_revision[old]
        for slot_id in running:
            self._last_running[slot_id] = revision

    def acked(self, host_id: str, slot_id: str, converged: float | None) -> bool:
        """The host's agent converged to a set (from this server) sent after the last one that ran the slot."""
        if converged is None:
            return False
        running = self._sent.get(host_id, {}).get(converged)
        return running is not None and slot_id not in running and converged > self._last_running.get(slot_id, 0.0)

    def prune(self, converged: Mapping[str, float], live_slots: set[str]) -> None:
        for host_id, by_revision in self._sent.items():
            acked = converged.get(host_id)
            if acked is not None:
                for old in [r for r in by_revision if r < acked]:
                    del by_revision[old]
        for slot_id in [s for s in self._last_running if s not in live_slots]:
            del self._last_running[slot_id]


def acked_by(revisions: Revisions, converged: Mapping[str, float]) -> Acked:
    """The question the pure planner asks of leftovers (orchestrator/occupancy.py `leftovers_of`), answered from
    the revisions and the agents' `converged` acknowledgements as they are now."""
    return lambda host_id, slot_id: revisions.acked(host_id, slot_id, converged.get(host_id))
