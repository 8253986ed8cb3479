"""Rolling (in-service) upgrades and rollbacks, decided without I/O.

Why pure and level-triggered: every orchestrator pass calls `decide` with the service's slots as observed now and
the progress stored with the service; the answer depends on nothing else, so a restarted server carries on where
the upgrade stands, and deciding again on the decision's own result changes nothing.

How an upgrade goes (Cattle's in-service upgrade): the stored service spec is already the new one, so the slots
with another config hash are *old*. In batches of `batch_size` (lowest index first), old slots are *retired*: they
stay in the store for a rollback, keep their config, and leave the service's scale; the reconciler, which does not
see retired slots, then places a new slot (new config) at each freed index. With `start_first` a retired container
keeps running until the new container of its index is ready, otherwise it stops at once. A container is ready when
it runs with its own config hash and its health is "" (no check) or "healthy". The next batch starts once every
retired index has a ready new container and `interval` has passed since the previous batch. When no old slot is
left the service is `upgraded`; confirming removes the retired containers, rolling back brings them back.

Never stuck: a batch that is not ready within the strategy's deadline turns the service to `upgrade-error`, with a
reason naming the containers. Nothing else changes: the check goes on every pass (the agents keep retrying their
containers), the service recovers by itself when they become ready, and it can be rolled back at any time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.model.errors import InvalidInput
from corral.model.service_state import ServiceState

ACTIVE = ServiceState.ACTIVE
UPGRADING = ServiceState.UPGRADING
UPGRADED = ServiceState.UPGRADED
UPGRADE_ERROR = ServiceState.UPGRADE_ERROR
ROLLING_BACK = ServiceState.ROLLING_BACK
ROLLBACK_ERROR = ServiceState.ROLLBACK_ERROR

DEFAULT_BATCH_SIZE = 2  # rancher-compose's default
DEFAULT_INTERVAL_MS = 2000
DEFAULT_DEADLINE_SECONDS = 300.0
READY_HEALTH = frozenset({"", "healthy"})


@dataclass(frozen=True)
class Strategy:
    batch_size: int = DEFAULT_BATCH_SIZE
    interval_ms: int = DEFAULT_INTERVAL_MS
    start_first: bool = False
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS  # for one batch to become ready

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "interval_ms": self.interval_ms,
            "start_first": self.start_first,
            "deadline_seconds": self.deadline_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Strategy:
        return cls(
            batch_size=int(data.get("batch_size", DEFAULT_BATCH_SIZE)),
            interval_ms=int(data.get("interval_ms", DEFAULT_INTERVAL_MS)),
            start_first=bool(data.get("start_first", False)),
            deadline_seconds=float(data.get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)),
        )


def strategy_for(
    compose_strategy: Mapping[str, Any] | None,
    health_check: Mapping[str, Any] | None,
    *,
    batch_size: int | None = None,
    interval_ms: int | None = None,
    start_first: bool | None = None,
    deadline_seconds: float | None = None,
    where: str = "upgrade",
) -> Strategy:
    """The strategy of one upgrade: request values first, then the service's rancher-compose `upgrade_strategy`
    (`batch_size`, `interval_millis`, `start_first`), then the defaults. The default deadline is the larger of
    5 minutes and the health check's `initializing_timeout` (ms). `where` prefixes the field of an error."""
    raw = compose_strategy or {}
    batch = batch_size if batch_size is not None else raw.get("batch_size", DEFAULT_BATCH_SIZE)
    interval = interval_ms if interval_ms is not None else raw.get("interval_millis", DEFAULT_INTERVAL_MS)
    first = start_first if start_first is not None else raw.get("start_first", False)
    if deadline_seconds is None:
        initializing = (health_check or {}).get("initializing_timeout")
        deadline_seconds = DEFAULT_DEADLINE_SECONDS
        if isinstance(initializing, int | float) and not isinstance(initializing, bool):
            deadline_seconds = max(deadline_seconds, float(initializing) / 1000.0)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise InvalidInput(
            f"{where}: batch_size must be a whole number of at least 1, not {batch!r}", field=f"{where}.batch_size"
        )
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 0:
        raise InvalidInput(
            f"{where}: interval must be a whole number of milliseconds >= 0, not {interval!r}",
            field=f"{where}.interval_ms",
        )
    if not deadline_seconds > 0:
        raise InvalidInput(
            f"{where}: deadline_seconds must be positive, not {deadline_seconds!r}", field=f"{where}.deadline_seconds"
        )
    return Strategy(batch, interval, bool(first), float(deadline_seconds))


@dataclass(frozen=True)
class UpgradeSlot:
    """One slot of the service as the upgrade sees it: what is wanted, and what its agent reports."""

    id: str
    name: str
    index: int
    config_hash: str
    retired: bool = False
    running: bool = True  # desired
    observed_state: str | None = None
    observed_hash: str | None = None
    health: str = ""
    reason: str = ""  # the agent's, when it cannot create or start the container

    @property
    def ready(self) -> bool:
        """It runs with its own config and is not known to be unhealthy."""
        return (
            self.observed_state == "running" and self.observed_hash == self.config_hash and self.health in READY_HEALTH
        )

    def describe(self) -> str:
        if self.reason:
            return f"{self.name} ({self.reason})"
        if self.observed_state is None:
            return f"{self.name} (not created yet)"
        if self.observed_state == "running" and self.health not in READY_HEALTH:
            return f"{self.name} (health {self.health})"
        return f"{self.name} ({self.observed_state})"


@dataclass(frozen=True)
class Step:
    """One pass's decision: slots to retire (and stop unless start_first), retired slots to stop now, the state."""

    state: ServiceState
    reason: str = ""
    retire: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    batch_at: float = 0.0  # when the current batch was retired (the progress to store)

    @property
    def acts(self) -> bool:
        return bool(self.retire or self.stop)


def decide(
    slots: Sequence[UpgradeSlot],
    *,
    new_hash: str,
    scale: int,
    strategy: Strategy,
    batch_at: float,
    now: float,
) -> Step:
    """The next step of an upgrade to `new_hash`, `batch_at` being when the last batch was retired (0: none yet)."""
    current = [s for s in slots if not s.retired]
    retired = [s for s in slots if s.retired]
    new_by_index = {s.index: s for s in current if s.config_hash == new_hash}
    ready = {i for i, s in new_by_index.items() if s.ready}
    stop = tuple(
        sorted(s.id for s in retired if s.running and (not strategy.start_first or s.index in ready or s.index > scale))
    )
    waiting = sorted({s.index for s in retired if s.index not in ready and s.index <= scale})
    if waiting:
        laggards = [
            new_by_index[i].describe() if i in new_by_index else f"#{i} (no new container placed yet)" for i in waiting
        ]
        if now - batch_at > strategy.deadline_seconds:
            reason = (
                f"not ready within {strategy.deadline_seconds:g} s: {', '.join(laggards)}; "
                "waiting on, or roll back the upgrade"
            )
            return Step(UPGRADE_ERROR, reason, stop=stop, batch_at=batch_at)
        return Step(UPGRADING, f"waiting for {', '.join(laggards)}", stop=stop, batch_at=batch_at)
    old = sorted((s for s in current if s.config_hash != new_hash), key=lambda s: (s.index, s.id))
    if not old:
        return Step(UPGRADED, "", stop=stop, batch_at=batch_at)
    if batch_at and now < batch_at + strategy.interval_ms / 1000.0:
        return Step(UPGRADING, f"next batch after the {strategy.interval_ms} ms interval", stop=stop, batch_at=batch_at)
    batch = old[: strategy.batch_size]
    extra_stops = () if strategy.start_first else tuple(s.id for s in batch if s.running)
    reason = f"upgrading {', '.join(s.name for s in batch)}"
    return Step(
        UPGRADING, reason, retire=tuple(s.id for s in batch), stop=tuple(sorted({*stop, *extra_stops})), batch_at=now
    )


def rollback_step(slots: Sequence[UpgradeSlot], *, config_hash: str, since: float, now: float, deadline: float) -> Step:
    """After a rollback (retired slots brought back, new ones dropped): `active` once every wanted container runs
    with `config_hash` again; `rollback-error` with the laggards named when that takes longer than `deadline`."""
    laggards = [
        s.describe()
        for s in sorted(slots, key=lambda s: (s.index, s.id))
        if not s.retired and s.running and not (s.ready and s.config_hash == config_hash)
    ]
    if not laggards:
        return Step(ACTIVE, batch_at=since)
    if now - since > deadline:
        return Step(ROLLBACK_ERROR, f"not back within {deadline:g} s: {', '.join(laggards)}", batch_at=since)
    return Step(ROLLING_BACK, f"waiting for {', '.join(laggards)}", batch_at=since)


def next_generation(retired_generations: Sequence[int]) -> int:
    """The generation (name suffix) of a new container placed beside retired ones of its index."""
    return max(retired_generations, default=0) + 1
