"""The event loop's lag watchdog: a warning with the loop thread's Python stack whenever the loop stops running
callbacks for seconds.

Why: everything the server does on its loop (every route, websocket, agent session, event stream, UI page) waits
while one callback runs synchronous work (a database call, a Docker or HTTP call, a password hash, a big render).
Under load such a stall shows up far away, as a client's handshake timing out, with nothing in the server log.
A daemon thread posts a no-op to the loop every second (`call_soon_threadsafe`); when the loop has not run it
within `threshold` seconds, the thread samples the loop thread's stack (`sys._current_frames()`) about once a
second until the no-op runs, then logs ONE warning "event loop blocked for N s" with the stacks it saw (a long
stall is one line with its full duration, not one per second). A stall still going on after `still_blocked`
seconds is also logged while it lasts (once), so a loop that never comes back is not silent.
The warning also says how much CPU the loop's thread used during the stall and the machine's load average: a
thread that computed the whole time ran slow code on the loop; one that barely ran waited (I/O, a lock) or was
starved of CPU by a loaded machine, and the stack says which.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger("corral.server.loop")

STACK_FRAMES = 40  # the innermost frames kept of each sampled stack
MAX_STACKS = 3  # distinct stacks named in one warning (the most often seen first)


class LoopWatchdog:
    """Watches `loop` from a daemon thread. `start()` must be called from the loop's own thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = 2.0,
        interval: float = 1.0,
        still_blocked: float = 60.0,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.interval = interval
        self.still_blocked = still_blocked
        self.logger = logger
        self.clock = clock
        self.stalls = 0  # stalls seen so far (for tests and curious readers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread_id = 0
        self._loop_cpu_clock: int | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop_thread_id = threading.get_ident()
        try:
            self._loop_cpu_clock = time.pthread_getcpuclockid(self._loop_thread_id)
        except (AttributeError, OSError):  # not on this platform: the warning says nothing of CPU
            self._loop_cpu_clock = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval + self.threshold + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            ran = threading.Event()
            ran_at: list[float] = []

            def tick(ran: threading.Event = ran, ran_at: list[float] = ran_at) -> None:
                ran_at.append(self.clock())
                ran.set()

            posted, cpu_at_post = self.clock(), self._loop_cpu()
            try:
                self.loop.call_soon_threadsafe(tick)
            except RuntimeError:  # the loop is closed: nothing left to watch
                return
            if ran.wait(self.threshold) or self._stop.is_set():
                continue
            self._watch_stall(posted, cpu_at_post, ran, ran_at)

    def _watch_stall(self, posted: float, cpu_at_post: float | None, ran: threading.Event, ran_at: list[float]) -> None:
        """The loop has not run our no-op for `threshold` s: sample its stack until it does, then log once."""
        seen: collections.Counter[str] = collections.Counter()
        first: dict[str, int] = {}
        reported_ongoing = False
        while True:
            stack = self._loop_stack()
            first.setdefault(stack, len(first))
            seen[stack] += 1
            if ran.wait(self.interval):
                break
            if self._stop.is_set():
                return
            waited = self.clock() - posted
            if not reported_ongoing and waited >= self.still_blocked:
                reported_ongoing = True
                self.logger.warning(
                    "event loop blocked for %.1f s so far (still blocked; %s)%s",
                    waited,
                    self._circumstances(cpu_at_post),
                    _stacks_text(seen, first),
                )
        self.stalls += 1
        duration = (ran_at[0] if ran_at else self.clock()) - posted
        self.logger.warning(
            "event loop blocked for %.1f s (%s)%s",
            duration,
            self._circumstances(cpu_at_post),
            _stacks_text(seen, first),
        )

    def _loop_cpu(self) -> float | None:
        if self._loop_cpu_clock is None:
            return None
        try:
            return time.clock_gettime(self._loop_cpu_clock)
        except OSError:  # the thread is gone
            return None

    def _circumstances(self, cpu_at_post: float | None) -> str:
        """The loop thread's CPU time since the no-op was posted, and the load average."""
        parts = []
        cpu_now = self._loop_cpu()
        if cpu_at_post is not None and cpu_now is not None:
            parts.append(f"the loop's thread used {cpu_now - cpu_at_post:.1f} s of CPU meanwhile")
        with contextlib.suppress(OSError):
            parts.append(f"load average {os.getloadavg()[0]:.1f}")
        return "; ".join(parts) or "no CPU figures"

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread_id)
        if frame is None:
            return "  (the loop's thread has no Python frame)\n"
        return "".join(traceback.format_stack(frame)[-STACK_FRAMES:])


def _stacks_text(seen: collections.Counter[str], first: dict[str, int]) -> str:
    """The distinct stacks sampled, the most often seen first (ties: the earliest), each with its count."""
    samples = sum(seen.values())
    ranked = sorted(seen, key=lambda stack: (-seen[stack], first[stack]))
    parts = [
        f"\nthe loop thread's stack ({seen[stack]} of {samples} samples):\n{stack.rstrip()}"
        for stack in ranked[:MAX_STACKS]
    ]
    if len(ranked) > MAX_STACKS:
        parts.append(f"\n({len(ranked) - MAX_STACKS} other stacks not shown)")
    return "".join(parts)
