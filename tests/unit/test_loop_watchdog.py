"""The loop watchdog (server/shared/loop_watchdog.py) on a real event loop in a thread, blocked by `time.sleep` in a
callback: one warning per stall, naming the blocking function, with the stall's duration."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator

import pytest

from corral.server.shared.loop_watchdog import LoopWatchdog


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="watched-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _watch(loop: asyncio.AbstractEventLoop, **options: float) -> LoopWatchdog:
    watchdog = LoopWatchdog(loop, logger=logging.getLogger("test.loop"), **options)
    started = threading.Event()

    def start() -> None:  # from the loop's own thread, as the server's lifespan does
        watchdog.start()
        started.set()

    loop.call_soon_threadsafe(start)
    assert started.wait(10)
    return watchdog


def _block_the_loop_with_a_sleep(seconds: float) -> None:
    time.sleep(seconds)


def _run_on(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Block `loop` for `seconds` in `_block_the_loop_with_a_sleep` and wait until it ran again."""
    loop.call_soon_threadsafe(_block_the_loop_with_a_sleep, seconds)
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=60)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.loop" and r.levelno == logging.WARNING]


def _wait_for_warnings(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(_warnings(caplog)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return _warnings(caplog)


def test_a_blocked_loop_is_reported_once_with_the_blocking_function(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="test.loop")
    watchdog = _watch(loop, threshold=1.0, interval=0.2)
    try:
        _run_on(loop, 4.0)
        (warning,) = _wait_for_warnings(caplog, 1)
        time.sleep(0.5)  # nothing more comes for the same stall
    finally:
        watchdog.stop()
    assert _warnings(caplog) == [warning]
    assert warning.startswith("event loop blocked for ")
    blocked_for = float(warning.removeprefix("event loop blocked for ").split(" s", 1)[0])
    assert 2.0 <= blocked_for <= 60.0  # it slept 4 s: generous bounds, the machine may be loaded
    assert "_block_the_loop_with_a_sleep" in warning
    assert "time.sleep(seconds)" in warning  # the stack goes down to the line that blocks
    used = re.search(r"the loop's thread used ([0-9.]+) s of CPU meanwhile", warning)
    assert used is not None and float(used.group(1)) < 1.0  # it slept: blocked, not computing
    assert watchdog.stalls == 1


def test_a_stall_that_goes_on_is_reported_while_it_lasts_and_once_more_when_it_ends(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="test.loop")
    watchdog = _watch(loop, threshold=0.5, interval=0.2, still_blocked=1.5)
    try:
        _run_on(loop, 4.0)
        ongoing, ended = _wait_for_warnings(caplog, 2)
    finally:
        watchdog.stop()
    assert "so far (still blocked;" in ongoing and "_block_the_loop_with_a_sleep" in ongoing
    assert "still blocked" not in ended and "_block_the_loop_with_a_sleep" in ended


def test_a_loop_that_runs_its_callbacks_is_not_reported(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="test.loop")
    watchdog = _watch(loop, threshold=5.0, interval=0.1)
    try:
        for _ in range(10):
            _run_on(loop, 0.01)
            time.sleep(0.1)
    finally:
        watchdog.stop()
    assert _warnings(caplog) == []
    assert watchdog.stalls == 0


def test_the_watchdog_ends_with_its_loop(loop: asyncio.AbstractEventLoop) -> None:
    watchdog = _watch(loop, threshold=1.0, interval=0.1)
    thread = watchdog._thread
    assert thread is not None and thread.is_alive()
    watchdog.stop()
    assert not thread.is_alive()
