"""The resume rules (model/watch.py) as properties: whatever mix of replayed and live events a subscriber reads,
and however they overlap, it passes each version once and in order; a watch's changes take a client's items
from one render to the next."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.model.watch import ADDED, DELETED, MODIFIED, VersionGate, changes, merged


@st.composite
def split_stream(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """A stream of versions 1..n (with holes: events of other environments), a resume point, a replay of what the
    history kept after it up to the split, and a live queue that starts at or before the split (overlap) and may
    repeat events."""
    versions = sorted(draw(st.sets(st.integers(1, 200), max_size=60)))
    since = draw(st.integers(0, 200))
    split = draw(st.integers(since, 201))
    overlap = draw(st.integers(0, 10))
    replay = [{"version": v} for v in versions if since < v <= split]
    live = [{"version": v} for v in versions if v > split - overlap]
    repeats = draw(st.lists(st.sampled_from(live), max_size=5)) if live else []
    expected = [v for v in versions if v > since]
    return since, replay, sorted(live + repeats, key=lambda e: e["version"]), expected


@given(split_stream())
def test_replay_then_live_passes_each_version_once_in_order(case: tuple[Any, ...]) -> None:
    since, replay, live, expected = case
    assert [e["version"] for e in merged(since, replay, live)] == expected


@given(st.lists(st.integers(0, 50)))
def test_the_gate_passes_only_increasing_versions(versions: list[int]) -> None:
    gate = VersionGate(10)
    passed = [v for v in versions if gate.admit(v)]
    assert passed == sorted(set(passed)) and all(v > 10 for v in passed)
    assert passed == [v for i, v in enumerate(versions) if v > max([10, *versions[:i]])]


items = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3), max_size=8)


@given(items, items)
def test_changes_take_the_client_from_one_render_to_the_next(before: dict[str, int], after: dict[str, int]) -> None:
    view = {key: {"id": key, "v": value} for key, value in before.items()}
    target = {key: {"id": key, "v": value} for key, value in after.items()}
    client = dict(view)
    for kind, item in changes(view, target):
        assert (kind == ADDED) == (item["id"] not in client)
        if kind == DELETED:
            del client[item["id"]]
        else:
            assert kind in (ADDED, MODIFIED) and client.get(item["id"]) != item
            client[item["id"]] = item
    assert client == target


class _Kept:
    """What `EventHistory` asks of the event store at start: the kept ids' bounds, and what it pruned since."""

    def __init__(self, oldest: int, newest: int) -> None:
        self.oldest, self.newest, self.pruned_through = oldest, newest, 0

    def bounds(self) -> tuple[int, int]:
        return self.oldest, self.newest


def test_a_restart_never_gives_a_version_twice_and_its_gap_reads_as_gone() -> None:
    from corral.server.shared.event_history import RESTART_GAP, EventHistory

    history = EventHistory(_Kept(oldest=1, newest=50))  # type: ignore[arg-type]
    first = history.open()
    assert first == 50 + RESTART_GAP
    current = first + 5
    assert history.gone(50, current) is None and history.gone(0, current) is None  # everything after is kept
    assert history.gone(51, current) and history.gone(first, current)  # a crashed run may have given these out
    assert history.gone(first + 1, current) is None and history.gone(current, current) is None
    assert history.gone(current + 1, current)  # never given out by this run
    history.events.pruned_through = 20  # type: ignore[attr-defined]
    assert history.gone(19, current) and history.gone(20, current) is None

    pruned = EventHistory(_Kept(oldest=8, newest=9))  # type: ignore[arg-type]
    pruned.open()
    assert pruned.gone(6, pruned.open()) and pruned.gone(7, pruned.open()) is None
    empty = EventHistory(_Kept(0, 0))  # type: ignore[arg-type]
    assert empty.open() == 0 and empty.gone(0, 0) is None and empty.gone(1, 0)
