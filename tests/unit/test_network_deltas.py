"""Network-state deltas (model/network_deltas.py): applying the delta from a to b on a gives exactly b's full state,
order included; no change is no delta; a gap is detected; malformed deltas are refused naming the section."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model import deltas
from corral.model.errors import InvalidInput
from corral.model.network import NetworkState
from corral.model.network_deltas import Parts, apply_network, full_state, network_delta

_names = st.sampled_from(["a", "b", "a-b", "d"])


@st.composite
def _container(draw: st.DrawFn) -> dict[str, Any]:
    stack, service = draw(_names), draw(_names)
    index = draw(st.integers(1, 4))
    return {
        "slot_id": f"s-{stack}{service}{index}{draw(st.sampled_from(['x', 'y']))}",
        "name": f"{stack}-{service}-{index}",
        "stack": stack,
        "service": service,
        "index": index,
        "host_id": draw(st.sampled_from(["h-1", "h-2", "h-3"])),
        "ip": draw(st.sampled_from(["", "10.42.0.2", "10.42.1.7"])),
        "running": draw(st.booleans()),
        "healthy": draw(st.booleans()),
        "primary": "",
        "links": draw(st.lists(_names, max_size=2)),
        "external_links": [],
    }


def _host(host_id: str, address: str) -> dict[str, Any]:
    return {"host_id": host_id, "name": host_id, "address": address, "slice": "10.42.1.0/24", "gateway": "10.42.1.1"}


@st.composite
def _state(draw: st.DrawFn) -> dict[str, Any]:
    peers = draw(st.lists(st.sampled_from(["h-2", "h-3", "h-4"]), unique=True))
    services = draw(st.lists(st.tuples(_names, _names, st.integers(0, 5)), unique_by=lambda s: s[:2], max_size=6))
    return {
        "environment_id": "e-1",
        "environment": draw(st.sampled_from(["Default", "Other"])),
        "settings": {"subnet": "10.42.0.0/16", "host_prefix": 24, "mtu": 1420, "vni": 7, "encryption": True},
        "host": _host("h-1", draw(st.sampled_from(["198.18.0.1", "198.18.0.9"]))),
        "peers": [_host(p, draw(st.sampled_from(["198.18.0.2", "198.18.0.3"]))) for p in peers],
        "containers": draw(st.lists(_container(), unique_by=lambda c: c["slot_id"], max_size=12)),
        "services": [{"stack": a, "name": b, "scale": n, "labels": {}, "metadata": {}} for a, b, n in services],
        "hosts": [{"host_id": h, "name": h, "labels": {}} for h in ["h-1", *peers]],
    }


@settings(max_examples=300, deadline=None)
@given(_state(), _state())
def test_applying_the_delta_from_a_to_b_gives_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    held, now = Parts.of(a), Parts.of(b)
    delta = network_delta(held, now)
    if delta is None:
        assert full_state(held) == full_state(now)
        return
    result = apply_network(held, delta)
    assert full_state(result) == full_state(now)
    NetworkState.from_dict(full_state(result))  # what the agent's manager parses


@settings(max_examples=100, deadline=None)
@given(_state())
def test_no_change_is_no_delta_and_the_full_state_is_canonical(a: dict[str, Any]) -> None:
    assert network_delta(Parts.of(a), Parts.of(a)) is None
    shuffled = {**a, "containers": list(reversed(a["containers"])), "peers": list(reversed(a["peers"]))}
    assert full_state(Parts.of(shuffled)) == full_state(Parts.of(a))


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 5)), st.integers(0, 5))
def test_a_gap_is_detected(held: int | None, base: int) -> None:
    assert deltas.is_gap(held, {"base": base, "put": {}, "remove": {}}) == (held is None or held != base)


def test_a_scale_by_one_sends_one_container_and_one_service() -> None:
    before = {
        "environment_id": "e-1",
        "host": _host("h-1", "198.18.0.1"),
        "containers": [
            {"slot_id": f"s-{i}", "stack": "app", "service": "web", "index": i, "ip": ""} for i in range(1, 101)
        ],
        "services": [{"stack": "app", "name": "web", "scale": 100}],
    }
    after = {
        **before,
        "containers": [*before["containers"], {"slot_id": "s-101", "stack": "app", "service": "web", "index": 101}],
        "services": [{"stack": "app", "name": "web", "scale": 101}],
    }
    memo: dict[Any, Any] = {}
    delta = network_delta(Parts.of(before), Parts.of(after), memo)
    assert delta == {
        "put": {"containers": [after["containers"][-1]], "services": after["services"]},
        "remove": {},
    }
    assert network_delta(Parts.of(after), Parts.of(before)) == {
        "put": {"services": before["services"]},
        "remove": {"containers": ["s-101"]},
    }


@pytest.mark.parametrize(
    ("delta", "field"),
    [
        ({"put": [], "remove": {}}, "put"),
        ({"put": {"volumes": []}, "remove": {}}, "put.volumes"),
        ({"put": {"containers": [{"name": "no slot id"}]}, "remove": {}}, "containers.slot_id"),
        ({"put": {}, "remove": {"services": "a/b"}}, "put"),
    ],
)
def test_a_malformed_delta_is_refused_naming_the_field(delta: dict[str, Any], field: str) -> None:
    held = Parts.of({"environment_id": "e-1", "host": _host("h-1", "198.18.0.1")})
    with pytest.raises(InvalidInput) as caught:
        apply_network(held, delta)
    assert caught.value.field == field


def test_a_full_state_without_its_host_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        Parts.of({"environment_id": "e-1", "containers": []})
    assert caught.value.field == "host"
