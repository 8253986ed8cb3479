"""agent/engine_monitor.py `await_starts`: a created container's report waits for its start (or death, or removal)
so that one report says it runs, but never past the deadline, and never past a change that is not a container's."""

from __future__ import annotations

import asyncio

from corral.agent.engine_monitor import ENGINE_LOST, ContainerEvent, EngineChange, await_starts


def _batch(initial: list[EngineChange], later: list[tuple[float, EngineChange]], linger: float) -> list[EngineChange]:
    async def run() -> list[EngineChange]:
        queue: asyncio.Queue[EngineChange] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for delay, change in later:
            loop.call_later(delay, queue.put_nowait, change)
        changes = list(initial)
        await await_starts(queue, changes, loop.time() + linger)
        return changes

    return asyncio.run(run())


def test_a_create_waits_for_its_start() -> None:
    create, start = ContainerEvent("create", "a"), ContainerEvent("start", "a")
    assert _batch([create], [(0.05, start), (0.3, ContainerEvent("die", "b"))], 5.0) == [create, start]


def test_every_created_container_is_waited_for() -> None:
    events = [ContainerEvent("create", "a"), ContainerEvent("create", "b")]
    later = [ContainerEvent("start", "a"), ContainerEvent("die", "b")]
    assert _batch(events[:1], [(0.02, events[1]), (0.04, later[0]), (0.06, later[1])], 5.0) == [
        events[0],
        events[1],
        *later,
    ]


def test_a_create_that_never_starts_is_reported_at_the_deadline() -> None:
    create = ContainerEvent("create", "a")
    assert _batch([create], [(1.0, ContainerEvent("start", "a"))], 0.1) == [create]


def test_nothing_waits_without_a_create() -> None:
    start = ContainerEvent("start", "a")
    assert _batch([start], [(0.05, ContainerEvent("die", "a"))], 5.0) == [start]


def test_an_engine_change_ends_the_wait() -> None:
    create = ContainerEvent("create", "a")
    assert _batch([create], [(0.02, ENGINE_LOST), (0.1, ContainerEvent("start", "a"))], 5.0) == [create, ENGINE_LOST]
