"""Jittered exponential backoff for everything the agent retries (server, registration, Docker engine).

Why full jitter: after a server restart every agent of a fleet reconnects at once; a uniformly random delay in
[0, min(cap, base * 2**attempt)] spreads them out best (the AWS architecture blog's "full jitter").
"""

from __future__ import annotations

import random

BASE_SECONDS = 0.5
_MAX_EXPONENT = 32  # 0.5 * 2**32 s is far past any sane cap; stops float overflow on very long outages


def backoff_ceiling(attempt: int, *, base: float = BASE_SECONDS, cap: float) -> float:
    """The upper bound of the delay before retry number `attempt` (0-based)."""
    return min(cap, base * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))


def backoff_delay(attempt: int, *, base: float = BASE_SECONDS, cap: float, rng: random.Random | None = None) -> float:
    """A delay drawn uniformly from [0, backoff_ceiling(attempt)]."""
    source = rng if rng is not None else random
    return source.uniform(0.0, backoff_ceiling(attempt, base=base, cap=cap))


class Backoff:
    """Counts consecutive failures; `reset` after a success so the next failure retries quickly."""

    def __init__(self, *, cap: float, base: float = BASE_SECONDS, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = max(cap, 0.0)
        self.attempt = 0
        self._rng = rng

    def next_delay(self) -> float:
        delay = backoff_delay(self.attempt, base=self.base, cap=self.cap, rng=self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
