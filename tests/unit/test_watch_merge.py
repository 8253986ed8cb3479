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
