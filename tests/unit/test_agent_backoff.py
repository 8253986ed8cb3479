"""The agent's retry delays: bounded by the cap, jittered, growing with consecutive failures."""

from __future__ import annotations

import random
import statistics

from corral.agent.backoff import BASE_SECONDS, Backoff, backoff_ceiling, backoff_delay


def test_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_ceiling(n, cap=5.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_ceiling(0, cap=5.0) == BASE_SECONDS


def test_huge_attempt_counts_stay_bounded() -> None:
    assert backoff_ceiling(10_000, cap=7.0) == 7.0
    assert 0.0 <= backoff_delay(10**9, cap=7.0) <= 7.0


def test_negative_attempts_count_as_the_first() -> None:
    assert backoff_ceiling(-3, cap=5.0) == 0.5


def test_delays_are_within_bounds_and_jittered() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        delays = [backoff_delay(attempt, cap=5.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= backoff_ceiling(attempt, cap=5.0) for d in delays)
        assert len(set(delays)) > 150  # full jitter, not a fixed schedule


def test_delays_grow_with_consecutive_failures() -> None:
    rng = random.Random(11)
    means = [statistics.mean(backoff_delay(n, cap=30.0, rng=rng) for _ in range(2000)) for n in range(5)]
    assert means == sorted(means)
    assert means[4] > 5 * means[0]


def test_backoff_counts_attempts_and_resets() -> None:
    backoff = Backoff(cap=2.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(10)]
    assert backoff.attempt == 10
    assert all(0.0 <= d <= 2.0 for d in delays)
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() <= 0.5


def test_zero_cap_means_retry_at_once() -> None:
    assert Backoff(cap=0.0).next_delay() == 0.0
