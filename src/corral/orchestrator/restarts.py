"""Restarts and rolling restarts of a service's containers, decided without I/O.

Why level-triggered like the upgrades (orchestrator/upgrades.py): a restart is stored with the service (the
`restarting` state and its progress) and every orchestrator pass calls `decide_restart` with that progress and
the containers as observed now; the answer depends on nothing else, so a server killed in the middle of a batch
carries on where it was, and no container is left stopped or restarted twice.

How it goes (Cattle's restart with a `rollingRestartStrategy`): the slots to restart wait in `pending`, in order.
A batch of `batch_size` of them is asked to stop (desired `running` false); each one observed stopped is asked to
start again (desired `running` true with a new `start_requested_at`, which the agent honours); each one observed
running again (and healthy, when checked) is done. The next batch begins once the whole batch is done and
`interval_ms` has passed since then. So at most `batch_size` containers are down at once and every slot is
restarted once. A plain restart is one batch of every slot.

Never stuck: a batch not running again within `deadline_seconds` ends the restart: its containers are asked to
run (none stays stopped), the slots not begun yet are left alone, and the reason names the laggards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from corral.model.errors import InvalidInput
from corral.orchestrator.upgrades import READY_HEALTH  # ready for the next batch means what it means for an upgrade

DEFAULT_DEADLINE_SECONDS = 300.0
_UP_STATES = frozenset({"running", "restarting", "paused"})  # the engine still holds the process


@dataclass(frozen=True)
class RestartProgress:
    """A restart as stored with its service: the slots in each phase (ids, in order) and the batch's times."""

    pending: tuple[str, ...] = ()  # not begun yet
    stopping: tuple[str, ...] = ()  # asked to stop
    starting: tuple[str, ...] = ()  # observed stopped, asked to start again
    done: tuple[str, ...] = ()  # running again
    batch_size: int = 1
    interval_ms: int = 0
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    batch_at: float = 0.0  # when the current batch was asked to stop
    ready_at: float = 0.0  # when the previous batch was running again (0: no batch yet)

    @property
    def batch(self) -> tuple[str, ...]:
        return self.stopping + self.starting

    @property
    def finished(self) -> bool:
        return not (self.pending or self.batch)

    def with_slots(self, slot_ids: Sequence[str]) -> RestartProgress:
        """Also restart `slot_ids` (a container restart during a service's restart): those not waiting or in the
        current batch are queued again."""
        busy = set(self.pending) | set(self.batch)
        extra = tuple(s for s in dict.fromkeys(slot_ids) if s not in busy)
        return replace(self, pending=self.pending + extra, done=tuple(s for s in self.done if s not in extra))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": list(self.pending),
            "stopping": list(self.stopping),
            "starting": list(self.starting),
            "done": list(self.done),
            "batch_size": self.batch_size,
            "interval_ms": self.interval_ms,
            "deadline_seconds": self.deadline_seconds,
            "batch_at": self.batch_at,
            "ready_at": self.ready_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RestartProgress:
        return cls(
            pending=tuple(data.get("pending", ())),
            stopping=tuple(data.get("stopping", ())),
            starting=tuple(data.get("starting", ())),
            done=tuple(data.get("done", ())),
            batch_size=int(data.get("batch_size", 1)),
            interval_ms=int(data.get("interval_ms", 0)),
            deadline_seconds=float(data.get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)),
            batch_at=float(data.get("batch_at", 0.0)),
            ready_at=float(data.get("ready_at", 0.0)),
        )


def new_restart(
    slot_ids: Sequence[str],
    *,
    batch_size: int | None = None,
    interval_ms: int = 0,
    initializing_ms: int = 0,
) -> RestartProgress:
    """A restart of `slot_ids` in this order: all at once without `batch_size`. The deadline for a batch is the
    larger of 5 minutes and the health check's initializing timeout."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidInput(f"batch_size must be at least 1, not {batch_size}", field="batch_size")
    if interval_ms < 0:
        raise InvalidInput(f"interval_ms must be 0 or more, not {interval_ms}", field="interval_ms")
    ordered = tuple(dict.fromkeys(slot_ids))
    deadline = max(DEFAULT_DEADLINE_SECONDS, initializing_ms / 1000.0)
    return RestartProgress(
        pending=ordered,
        batch_size=batch_size if batch_size is not None else max(1, len(ordered)),
        interval_ms=interval_ms,
        deadline_seconds=deadline,
    )


@dataclass(frozen=True)
class RestartSlot:
    """One slot of the service as the restart sees it: what its agent reports (None: no container seen)."""

    id: str
    name: str
    observed_state: str | None = None
    health: str = ""

    @property
    def stopped(self) -> bool:
        return self.observed_state not in _UP_STATES

    @property
    def ready(self) -> bool:
        return self.observed_state == "running" and self.health in READY_HEALTH

    def describe(self) -> str:
        if self.observed_state is None:
            return f"{self.name} (no container)"
        if self.observed_state == "running" and self.health not in READY_HEALTH:
            return f"{self.name} (health {self.health})"
        return f"{self.name} ({self.observed_state})"


@dataclass(frozen=True)
class RestartStep:
    """One pass's decision: the progress to store, slots to ask to stop, slots to ask to start again."""

    progress: RestartProgress
    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    reason: str = ""
    gave_up: bool = False

    @property
    def finished(self) -> bool:
        return self.gave_up or self.progress.finished


def decide_restart(progress: RestartProgress, slots: Sequence[RestartSlot], now: float) -> RestartStep:
    """The next step of a restart. Slots that no longer exist (scaled down, removed) are dropped from it; a slot
    moved into a phase by this step is judged on the next one (what is observed now predates the request)."""
    by_id = {s.id: s for s in slots}

    def kept(ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(i for i in ids if i in by_id)

    pending, stopping, starting, done = (
        kept(progress.pending),
        kept(progress.stopping),
        kept(progress.starting),
        kept(progress.done),
    )
    ready_at = progress.ready_at
    had_batch = bool(stopping or starting)
    now_done = tuple(i for i in starting if by_id[i].ready)
    starting = tuple(i for i in starting if i not in now_done)
    start = tuple(i for i in stopping if by_id[i].stopped)
    stopping = tuple(i for i in stopping if i not in start)
    starting += start
    done += now_done
    batch = stopping + starting
    if had_batch and not batch:
        ready_at = now
    step = replace(progress, pending=pending, stopping=stopping, starting=starting, done=done, ready_at=ready_at)
    if batch:
        if now - progress.batch_at > progress.deadline_seconds:
            laggards = ", ".join(by_id[i].describe() for i in batch)
            reason = f"restart stopped: not running again within {progress.deadline_seconds:g} s: {laggards}"
            ended = replace(step, pending=(), stopping=(), starting=())
            return RestartStep(ended, start=start + stopping, reason=reason, gave_up=True)
        names = ", ".join(by_id[i].name for i in batch)
        return RestartStep(step, start=start, reason=f"restarting {names} ({len(done)} of {_total(step)} done)")
    if not pending:
        return RestartStep(step, start=start)
    if ready_at and now < ready_at + progress.interval_ms / 1000.0:
        reason = f"next batch after the {progress.interval_ms} ms interval ({len(done)} of {_total(step)} done)"
        return RestartStep(step, start=start, reason=reason)
    take = pending[: progress.batch_size]
    step = replace(step, pending=pending[len(take) :], stopping=take, batch_at=now)
    names = ", ".join(by_id[i].name for i in take)
    return RestartStep(step, stop=take, start=start, reason=f"restarting {names} ({len(done)} of {_total(step)} done)")


def _total(progress: RestartProgress) -> int:
    return len(progress.pending) + len(progress.batch) + len(progress.done)
