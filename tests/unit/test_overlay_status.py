"""Broken overlay pairs as the server shows them: a pair is broken when either side reports it broken."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.entities import Host, HostState
from corral.model.errors import InvalidInput
from corral.server.views.overlay_status import overlay_connectivity, parse_connectivity


def host(host_id: str, reports: dict[str, bool]) -> Host:
    return Host(
        id=host_id,
        environment_id="env",
        name=f"n-{host_id}",
        state=HostState.ACTIVE,
        state_reason="",
        driver="local",
        address="",
        connectivity={peer: {"ok": ok, "since": 1.0, "error": "" if ok else "lost"} for peer, ok in reports.items()},
    )


reports = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.booleans()),
)


@given(reports)
def test_broken_is_symmetric_and_only_from_reports(seen: dict[str, dict[str, bool]]) -> None:
    hosts = [host(h, {p: ok for p, ok in seen.get(h, {}).items() if p != h}) for h in ("a", "b", "c")]
    views = {h.id: overlay_connectivity(h, hosts) for h in hosts}
    for me in hosts:
        for other in hosts:
            if me is other:
                continue
            mine = me.connectivity.get(other.id, {}).get("ok")
            theirs = other.connectivity.get(me.id, {}).get("ok")
            expected = mine is False or theirs is False
            assert (other.name in views[me.id]["broken"]) == expected
            assert (me.name in views[other.id]["broken"]) == expected


def test_no_report_means_not_reported() -> None:
    hosts = [host("a", {}), host("b", {})]
    assert overlay_connectivity(hosts[0], hosts) == {"peers": {}, "broken": [], "reported": False}


def test_peer_side_only_break_is_shown_on_both() -> None:
    a, b = host("a", {"b": True}), host("b", {"a": False})
    assert overlay_connectivity(a, [a, b])["broken"] == ["n-b"]
    assert overlay_connectivity(a, [a, b])["peers"]["n-b"]["ok"] is True
    assert overlay_connectivity(b, [a, b])["broken"] == ["n-a"]


@pytest.mark.parametrize(
    "data",
    [None, {}, {"peers": []}, {"peers": {"h": {"ok": "yes"}}}, {"peers": {"h": {"ok": True, "since": "x"}}}],
)
def test_malformed_reports_are_invalid_input(data: object) -> None:
    with pytest.raises(InvalidInput):
        parse_connectivity(data)


def test_a_good_report_is_normalised() -> None:
    parsed = parse_connectivity({"peers": {"h2": {"ok": False, "since": 3, "error": "no answer"}}})
    assert parsed == {"h2": {"ok": False, "since": 3.0, "error": "no answer"}}
