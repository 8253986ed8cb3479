"""`corral events --since` accepts durations, ISO times and UNIX seconds."""

from __future__ import annotations

import pytest
import typer

from corral.cli.events import iso, parse_since


def test_since_forms() -> None:
    now = 1_800_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("1.5h", now) == now - 5400
    assert parse_since("1700000000", now) == 1_700_000_000.0
    assert parse_since("2023-11-14T22:13:20Z", now) == 1_700_000_000.0
    assert iso(1_700_000_000.0) == "2023-11-14T22:13:20Z"


def test_a_bad_since_is_one_error() -> None:
    with pytest.raises(typer.Exit):
        parse_since("yesterday-ish", 0.0)


def test_inspect_prints_times_as_iso() -> None:
    from corral.cli.stacks import iso_times

    view = {"created_at": 1_700_000_000.0, "name": "web", "containers": [{"start_requested_at": 0.0, "index": 1}]}
    assert iso_times(view) == {
        "created_at": "2023-11-14T22:13:20Z",
        "name": "web",
        "containers": [{"start_requested_at": None, "index": 1}],
    }
