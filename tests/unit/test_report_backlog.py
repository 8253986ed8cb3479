"""The hub's backlog of agent reports kept through a database outage (server/hub/report_backlog.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.model import protocol
from corral.server.hub.report_backlog import Report, ReportBacklog

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
