"""The hub's backlog of agent reports kept through a database outage (server/hub/report_backlog.py)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from corral.model import protocol
from corral.model.errors import Unavailable
from corral.server.hub.report_backlog import Report, ReportBacklog, ReportDrain

kinds = st.sampled_from([protocol.SNAPSHOT, protocol.CONTAINER, protocol.SLOT, protocol.ENGINE, protocol.HELLO])


def _drain(backlog: ReportBacklog, host_id: str) -> list[Report]:
    out = []
    while (report := backlog.first(host_id)) is not None:
        out.append(report)
        backlog.done(host_id, report)
    return out


@given(st.lists(kinds, max_size=60), st.integers(min_value=1, max_value=20))
def test_reports_come_back_in_order_bounded_and_a_snapshot_replaces_the_container_reports_before_it(
    sent: list[str], limit: int
) -> None:
    backlog = ReportBacklog(limit=limit)
    reports = [Report(protocol.Message(kind, {"n": n})) for n, kind in enumerate(sent)]
    for report in reports:
        backlog.add("h", report)
        assert backlog.size("h") <= limit
    kept = _drain(backlog, "h")
    positions = [reports.index(r) for r in kept]
    assert positions == sorted(positions)  # the agent's order
    last_snapshot = max((i for i, k in enumerate(sent) if k == protocol.SNAPSHOT), default=-1)
    for report in kept:
        if report.message.type in (protocol.SNAPSHOT, protocol.CONTAINER):
            assert reports.index(report) >= last_snapshot  # nothing older than the latest snapshot survives
    if reports and len(sent) <= limit and sent[-1] != protocol.CONTAINER:
        assert kept[-1] is reports[-1]
    assert not backlog.pending("h") and backlog.hosts() == []


def test_hosts_are_kept_apart_and_forgotten() -> None:
    backlog = ReportBacklog()
    backlog.add("a", Report(protocol.Message(protocol.SLOT)))
    backlog.add("b", Report(protocol.Message(protocol.CONTAINER)))
    assert sorted(backlog.hosts()) == ["a", "b"]
    backlog.forget("a")
    assert backlog.hosts() == ["b"] and not backlog.pending("a")


def _report(kind: str, n: int) -> Report:
    return Report(protocol.Message(kind, {"n": n}))


def test_a_host_task_applies_reports_in_order_while_the_sender_goes_on() -> None:
    """`kick` returns at once (the connection keeps being read); the task applies the queue in order, and a report
    that arrives while it works is applied in the same turn."""

    async def scenario() -> None:
        backlog, applied, gate = ReportBacklog(), [], asyncio.Event()

        async def apply(host_id: str, report: Report) -> None:
            await gate.wait()
            applied.append((host_id, report.message.data["n"]))

        drain = ReportDrain(backlog, apply, lambda exc: None)
        backlog.add("h", _report(protocol.CONTAINER, 1))
        drain.kick("h")
        backlog.add("h", _report(protocol.SLOT, 2))
        drain.kick("h")  # one task per host
        assert drain.busy("h") and applied == []
        gate.set()
        assert await drain.run("h")
        assert applied == [("h", 1), ("h", 2)] and not backlog.pending("h") and not drain.busy("h")

    asyncio.run(scenario())


def test_an_outage_keeps_the_queue_and_a_broken_report_costs_only_itself() -> None:
    async def scenario() -> None:
        backlog, refused, applied = ReportBacklog(), [], []
        down = True

        async def apply(host_id: str, report: Report) -> None:
            if report.message.data["n"] == 2:
                raise RuntimeError("a bug")
            if down:
                raise Unavailable("the database is locked")
            applied.append(report.message.data["n"])

        drain = ReportDrain(backlog, apply, refused.append)
        for n in (1, 2, 3):
            backlog.add("h", _report(protocol.SLOT, n))
        assert not await drain.run("h")
        assert len(refused) == 1 and backlog.size("h") == 3  # nothing lost while the database is down
        down = False
        assert await drain.run("h")
        assert applied == [1, 3] and not backlog.pending("h")

    asyncio.run(scenario())
