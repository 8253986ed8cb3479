"""The container page's pure helpers: the logs box's tail choice and the message of an API error body."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.web.pages_containers import MAX_TAIL, parse_tail
from corral.web.streams import api_error_message


@given(st.integers(min_value=0, max_value=MAX_TAIL))
def test_a_number_of_lines_is_a_tail(lines: int) -> None:
    assert parse_tail(str(lines)) == lines


@pytest.mark.parametrize("value", ["all", "ALL", " all "])
def test_all_means_the_whole_log(value: str) -> None:
    assert parse_tail(value) is None


@pytest.mark.parametrize("value", ["-1", "ten", "", "1e3", str(MAX_TAIL + 1)])
def test_anything_else_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_tail(value)
    assert caught.value.field == "tail"


def test_an_api_error_shows_its_message() -> None:
    body = json.dumps({"error": "conflict", "message": "container web-1 has not been created on its host yet"})
    assert api_error_message(body.encode()) == "container web-1 has not been created on its host yet"
    assert api_error_message(b"plain text") == "plain text"
