"""`continue` tokens keyed on the sort key (server/views/paging.py): a walk through a collection that changes between
pages sees every item that exists for the whole walk exactly once, in order, whatever is inserted or removed
meanwhile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.server.views.paging import PageRequest, decode_token, encode_token, page

Item = tuple[str, int]  # (name, id): names repeat, ids do not
names = st.sampled_from(["a", "b", "c", "d", "e"])


def key(item: Item) -> tuple[str, int]:
    return item


@given(
    start=st.sets(st.tuples(names, st.integers(0, 50)), max_size=30),
    limit=st.integers(1, 7),
    changes=st.lists(st.tuples(st.booleans(), st.tuples(names, st.integers(51, 99))), max_size=20),
)
def test_walk_sees_every_lasting_item_once_in_order(start: set[Item], limit: int, changes: list) -> None:
    items = set(start)
    seen: list[Item] = []
    token: str | None = None
    removed: set[Item] = set()
    inserted: set[Item] = set()
    for step in range(200):
        found, token = page("things", list(items), key, PageRequest(limit, token))
        assert len(found) <= limit
        seen.extend(found)
        if token is None:
            break
        if step < len(changes):  # between two pages: an insert, or the removal of an item
            insert, item = changes[step]
            if insert:
                items.add(item)
                inserted.add(item)
            elif items:
                gone = sorted(items)[item[1] % len(items)]
                items.discard(gone)
                removed.add(gone)
    assert token is None
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    lasting = start - removed
    assert lasting <= set(seen)
    assert set(seen) <= start | inserted


def test_unpaged_and_single_page() -> None:
    items = [("b", 2), ("a", 1)]
    assert page("things", items, key, PageRequest(None, None)) == ([("a", 1), ("b", 2)], None)
    first, token = page("things", items, key, PageRequest(1, None))
    assert first == [("a", 1)] and token is not None
    assert page("things", items, key, PageRequest(5, token)) == ([("b", 2)], None)


@pytest.mark.parametrize("token", ["x", "!!", encode_token("other", ("a", 1)), "W10"])
def test_bad_tokens_are_clear_errors(token: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        page("things", [("a", 1)], key, PageRequest(1, token))
    assert raised.value.field == "continue"


def test_token_round_trip() -> None:
    assert decode_token("things", encode_token("things", ("a", 1, "id"))) == ("a", 1, "id")
