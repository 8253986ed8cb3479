"""The pure admission rules: token state and its refusal wording, lifetimes, and the bounds on host facts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.admission import (
    MAX_CPUS,
    MAX_TEXT,
    TokenState,
    TokenUsage,
    parse_lifetime,
    validate_facts,
    validate_max_uses,
)
from corral.model.errors import InvalidInput

times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
maybe_time = st.none() | times
maybe_uses = st.none() | st.integers(min_value=1, max_value=10)


@given(maybe_time, maybe_uses, st.integers(min_value=0, max_value=12), maybe_time, times)
def test_a_token_admits_exactly_when_its_state_is_active_and_a_refusal_names_the_state(
    expires_at: float | None, max_uses: int | None, uses: int, revoked_at: float | None, now: float
) -> None:
    usage = TokenUsage("rt_x", expires_at, max_uses, uses, revoked_at)
    admits = revoked_at is None and (max_uses is None or uses < max_uses) and (expires_at is None or now < expires_at)
    assert (usage.state(now) is TokenState.ACTIVE) == admits
    assert (usage.refusal(now) == "") == admits
    words = {TokenState.REVOKED: "was revoked", TokenState.USED_UP: "has been used", TokenState.EXPIRED: "expired at"}
    if not admits:
        assert words[usage.state(now)] in usage.refusal(now) and "rt_x" in usage.refusal(now)


def test_lifetimes_and_uses() -> None:
    assert parse_lifetime("2h") == 7200
    assert parse_lifetime("7d") == 7 * 86400
    assert parse_lifetime(" 90 ") == 90
    assert parse_lifetime("NEVER") is None
    for bad in ("", "2x", "-1h", "0", "367d", "1e9"):
        with pytest.raises(InvalidInput) as info:
            parse_lifetime(bad)
        assert info.value.field == "expires"
    assert validate_max_uses(None) is None and validate_max_uses(1) == 1
    for bad_uses in (0, -1, True, 10**7):
        with pytest.raises(InvalidInput):
            validate_max_uses(bad_uses)


@given(
    st.dictionaries(
        st.sampled_from(["hostname", "arch", "os", "kernel", "engine_version", "cpus", "memory_bytes", "other"]),
        st.one_of(st.text(max_size=300), st.integers(min_value=-(2**63), max_value=2**63), st.none(), st.booleans()),
    )
)
def test_facts_are_either_within_bounds_or_refused_naming_the_field(data: dict[str, object]) -> None:
    try:
        facts = validate_facts(data)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("facts.")
        return
    assert len(facts.hostname) <= MAX_TEXT["hostname"] and len(facts.os) <= MAX_TEXT["os"]
    assert 0 <= facts.cpus <= MAX_CPUS and facts.memory_bytes >= 0
