"""Version order and `upgrade_from` ranges (catalog/versions.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.catalog.versions import admits, compare, parse_range
from corral.model.errors import InvalidInput

versions = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=4).map(
    lambda parts: ".".join(str(p) for p in parts)
)


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1.10", "1.9", 1),
        ("1.0", "1.0.0", 0),
        ("v2.0", "2", 0),
        ("1.0.0-rc1", "1.0.0", -1),
        ("2.3.7-build.11", "2.3.7-build.9", 1),
        ("0.9.9", "1", -1),
    ],
)
def test_compare(left: str, right: str, expected: int) -> None:
    assert compare(left, right) == expected


@pytest.mark.parametrize(
    ("upgrade_from", "current", "expected"),
    [
        ("", "0.1", True),
        ("1.0.0", "1.0.0", True),
        ("1.0.0", "1.0.1", False),
        (">=1.0.0", "1.2", True),
        (">=1.0.0", "0.9", False),
        (">= 1.0", "0.9", False),
        (">1.0 <2.0 || >3.0", "1.5", True),
        (">1.0 <2.0 || >3.0", "2.5", False),
        (">1.0 <2.0 || >3.0", "3.1", True),
        ("2.3.7-build.11", "2.3.7-build.11", True),
        ("2.3.7-build.11", "2.3.7", False),
        ("^1.2", "1.9", True),
        ("^1.2", "2.0", False),
        ("~1.2.0", "1.2.9", True),
        ("~1.2.0", "1.3", False),
        ("!=1.0", "1.0", False),
    ],
)
def test_admits(upgrade_from: str, current: str, expected: bool) -> None:
    assert admits(upgrade_from, current) is expected


@pytest.mark.parametrize("bad", ["||", ">=", ">1.0 || ", "=> 1.0"])
def test_malformed_ranges_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_range(bad)
    assert caught.value.field == "upgrade_from"


@given(versions, versions)
def test_compare_is_antisymmetric(a: str, b: str) -> None:
    assert compare(a, b) == -compare(b, a)


@given(versions, versions)
def test_ranges_agree_with_compare(a: str, b: str) -> None:
    assert admits(f">={b}", a) is (compare(a, b) >= 0)
    assert admits(f"<{b}", a) is (compare(a, b) < 0)
    assert admits(b, a) is (compare(a, b) == 0)
    assert admits(f">{b} || ={a}", a)
