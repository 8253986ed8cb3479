"""Failed-authentication throttling per client address: blocked after N failures within a minute, for a while;
failures older than the window do not count; the table of addresses stays bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.server.security.auth import AuthThrottle, key_id_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_blocked_after_too_many_failures_then_let_go() -> None:
    clock = Clock()
    throttle = AuthThrottle(max_failures=3, block_seconds=30, clock=clock)
    assert [throttle.failed("10.0.0.1") for _ in range(3)] == [False, False, True]
    assert throttle.retry_after("10.0.0.1") == 30
    assert throttle.retry_after("10.0.0.2") == 0  # others are not affected
    clock.now += 29
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 1
    assert throttle.retry_after("10.0.0.1") == 0


def test_failures_older_than_a_minute_do_not_count() -> None:
    clock = Clock()
    throttle = AuthThrottle(max_failures=3, clock=clock)
    for _ in range(20):
        assert not throttle.failed("10.0.0.1")
        clock.now += 31  # two failures a minute at most
        assert throttle.retry_after("10.0.0.1") == 0


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=400))
def test_the_table_of_addresses_stays_bounded(addresses: list[int]) -> None:
    throttle = AuthThrottle(max_failures=2, max_addresses=50, clock=Clock())
    for address in addresses:
        throttle.failed(f"10.0.{address // 256}.{address % 256}")
        assert len(throttle) <= 50
    if addresses:  # the most recent address is always remembered
        last = addresses[-1]
        repeat = addresses.count(last) >= 2 and addresses[-2] == last
        assert (throttle.retry_after(f"10.0.{last // 256}.{last % 256}") > 0) or not repeat


def test_logs_name_the_access_key_never_the_secret() -> None:
    import base64

    header = "Basic " + base64.b64encode(b"HKEY123:top-secret").decode()
    assert key_id_of(header) == "HKEY123"
    assert key_id_of("Bearer ab\ncd:secret") == "ab?cd"
    assert key_id_of(None) == "-" and key_id_of("Basic !!!") == "-"
