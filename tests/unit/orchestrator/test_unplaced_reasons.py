"""Grouped reasons for unplaced indexes (model/reasons.py) and the hosts a "remaining" count leaves out."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from corral.model.reasons import group_unplaced, parse_unplaced

from .harness import active_hosts, other_slots, run, service

REASONS = st.sampled_from(
    [
        "port 80/tcp is taken on all 4 active hosts",
        "no hosts in the environment",
        "1 of 3 hosts is disconnected; needs arm64: 0 of 2 active hosts match (they have x86_64)",
        "waiting for r-a-1 on h2 to stop",
    ]
)


def test_consecutive_indexes_with_one_reason_are_one_range() -> None:
    why = "port 8081/tcp is taken on all 4 active hosts"
    text = group_unplaced([(i, why) for i in (3, 4, 5, 6)])
    assert text == f"#3-#6: {why}"


def test_distinct_reasons_keep_their_own_indexes_in_order() -> None:
    text = group_unplaced([(9, "a"), (3, "a"), (4, "b; c"), (5, "a"), (6, "a")])
    assert text == "#3, #5-#6, #9: a; #4: b; c"
    assert parse_unplaced(text) == [([3, 5, 6, 9], "a"), ([4], "b; c")]


def test_text_in_another_shape_is_no_group() -> None:
    assert parse_unplaced("") == []
    assert parse_unplaced("web-1 not running after 120 s: exited (1)") == []


@given(st.dictionaries(st.integers(min_value=1, max_value=500), REASONS, max_size=40))
def test_grouping_round_trips(reasons: dict[int, str]) -> None:
    text = group_unplaced(reasons.items())
    assert {index: why for indexes, why in parse_unplaced(text) for index in indexes} == reasons
    assert len(parse_unplaced(text)) == len(set(reasons.values()))  # each sentence once


def test_a_remaining_count_names_the_hosts_it_left_out() -> None:
    hosts = active_hosts(5)
    hosts[4] = dataclasses.replace(hosts[4], arch="aarch64")
    proxy = service(name="proxy", ports=[8081])
    plan = run(
        service(1, ports=[8081]),
        [],
        hosts,
        others=other_slots(proxy, ["h01", "h02", "h03", "h04"]),
        image_archs=frozenset({"amd64"}),
    )
    (why,) = plan.reasons.values()
    assert why.startswith("port 8081/tcp is taken on all 4 remaining active hosts (left out: host05 (aarch64")
