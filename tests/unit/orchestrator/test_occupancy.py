"""When an old container stops holding its index (orchestrator/occupancy.py), and the revision bookkeeping that
says whether an agent has acknowledged a desired set without it (server/control/occupancy_pass.py)."""

from __future__ import annotations

import dataclasses

from corral.model.entities import HostState
from corral.orchestrator.occupancy import Leftover, blocked_indexes, released, unit_blocked
from corral.orchestrator.scheduling import HostView
from corral.server.control.occupancy_pass import Revisions

HOST = HostView(id="h2", name="h2", state=HostState.ACTIVE)
OLD = Leftover(slot_id="s1", name="r-a-1", stack="r", service="a", index=1, host_id="h2")


def test_an_old_container_holds_its_index_until_acknowledged_and_reported_stopped() -> None:
    assert not released(OLD, HOST)  # no acknowledgement yet (also: right after a server restart)
    assert not released(dataclasses.replace(OLD, acked=True, observed_state="running"), HOST)
    assert not released(dataclasses.replace(OLD, acked=False, observed_state="exited"), HOST)  # may be restarted
    assert released(dataclasses.replace(OLD, acked=True, observed_state="exited"), HOST)
    assert released(dataclasses.replace(OLD, acked=True), HOST)  # removed
    reconnecting = dataclasses.replace(HOST, state=HostState.RECONNECTING)
    assert not released(OLD, reconnecting)  # within the grace period nothing is assumed
    assert released(OLD, dataclasses.replace(HOST, state=HostState.DISCONNECTED)) and released(OLD, None)
    blocked = blocked_indexes([OLD], {"h2": HOST})
    assert blocked == {("r", "a"): {1: "waiting for r-a-1 on h2 to stop"}}
    assert unit_blocked(blocked, "r", ["a", "b"]) == {1: "waiting for r-a-1 on h2 to stop"}
    assert unit_blocked(blocked, "r", ["b"]) == {}


def test_acknowledgements_count_only_for_sets_after_the_last_that_ran_the_slot() -> None:
    revisions = Revisions()
    first = revisions.next()
    revisions.sent("h2", first, [])  # before s1 existed
    second = revisions.next()
    revisions.sent("h2", second, [{"slot": {"id": "s1"}, "running": True}])
    third = revisions.next()
    revisions.sent("h2", third, [{"slot": {"id": "s1"}, "running": False}])
    assert not revisions.acked("h2", "s1", None)
    assert not revisions.acked("h2", "s1", first)  # an old set that did not know it yet
    assert not revisions.acked("h2", "s1", second)
    assert revisions.acked("h2", "s1", third)
    assert not revisions.acked("h2", "s1", third - 1000.0)  # a revision of an earlier server: unknown
    assert not Revisions().acked("h2", "s1", third)  # a restarted server knows no acknowledgement
    assert revisions.next() > third
