"""The overlay planner (network/overlay.py): wanted + present -> steps; applied, they converge; again: no-op."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.network import SERVICES_ADDRESS
from corral.network.overlay import (
    OverlayPlan,
    PresentOverlay,
    StepKind,
    VxlanLink,
    WantedOverlay,
    plan_overlay,
    wanted_peers,
)

BRIDGE = 7
SERVICES = f"{SERVICES_ADDRESS}/32"
addresses = st.sampled_from([f"198.18.0.{n}" for n in range(11, 20)])


def want(peers: set[str] | frozenset[str] = frozenset(), **changes: object) -> WantedOverlay:
    base = WantedOverlay(vni=4242, local="198.18.0.11", mtu=1450, peers=frozenset(peers))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def good_link(**changes: object) -> VxlanLink:
    link = VxlanLink(
        index=9, vni=4242, local="198.18.0.11", port=4789, learning=False, mtu=1450, master=BRIDGE, up=True
    )
    return dataclasses.replace(link, **changes)  # type: ignore[arg-type]


def simulate(have: PresentOverlay, plan: OverlayPlan, wanted: WantedOverlay) -> PresentOverlay:
    """What the kernel looks like after the steps (a model of netlink, for the property below)."""
    vxlan, flood, addrs, up = have.vxlan, set(have.flood_peers), set(have.bridge_addresses), have.bridge_up
    for step in plan.steps:
        if step.kind is StepKind.DELETE_VXLAN:
            vxlan, flood = None, set()
        elif step.kind is StepKind.CREATE_VXLAN:
            vxlan = VxlanLink(10, wanted.vni, wanted.local, wanted.port, False, 1500, 0, False)
        elif step.kind is StepKind.SET_VXLAN:
            assert vxlan is not None
            vxlan = dataclasses.replace(vxlan, mtu=wanted.mtu, master=BRIDGE, up=True)
        elif step.kind is StepKind.BRIDGE_UP:
            up = True
        elif step.kind is StepKind.ADDRESS_ADD:
            addrs.add(SERVICES)
        elif step.kind is StepKind.FDB_ADD:
            assert vxlan is not None
            flood.add(step.peer)
        elif step.kind is StepKind.FDB_DEL:
            flood.remove(step.peer)
    return PresentOverlay(have.bridge, up, vxlan, frozenset(flood), frozenset(addrs))


links = st.one_of(
    st.none(),
    st.builds(
        VxlanLink,
        index=st.just(9),
        vni=st.sampled_from([4242, 42]),
        local=st.sampled_from(["198.18.0.11", "198.18.0.99"]),
        port=st.sampled_from([4789, 8472]),
        learning=st.booleans(),
        mtu=st.sampled_from([1450, 1500]),
        master=st.sampled_from([0, BRIDGE, 3]),
        up=st.booleans(),
    ),
)


@given(
    link=links,
    flood=st.frozensets(addresses),
    peers=st.frozensets(addresses),
    bridge_up=st.booleans(),
    has_address=st.booleans(),
)
def test_applying_the_plan_converges_and_a_second_plan_is_empty(
    link: VxlanLink | None, flood: frozenset[str], peers: frozenset[str], bridge_up: bool, has_address: bool
) -> None:
    wanted = want(peers)
    have = PresentOverlay(
        BRIDGE, bridge_up, link, flood if link else frozenset(), frozenset({SERVICES} if has_address else set())
    )
    plan = plan_overlay(wanted, have)
    after = simulate(have, plan, wanted)
    assert plan_overlay(wanted, after).converged
    assert after.vxlan is not None and after.flood_peers == peers
    # a device is only replaced when an attribute that cannot be changed in place differs
    replaced = any(s.kind is StepKind.DELETE_VXLAN for s in plan.steps)
    assert replaced == (
        link is not None and (link.vni, link.local, link.port, link.learning) != (4242, "198.18.0.11", 4789, False)
    )


def test_missing_bridge_waits_and_does_nothing() -> None:
    plan = plan_overlay(want({"198.18.0.12"}), PresentOverlay(bridge=None))
    assert plan.steps == () and "corral0" in plan.waiting and not plan.converged


def test_stale_and_missing_fdb_entries() -> None:
    have = PresentOverlay(BRIDGE, True, good_link(), frozenset({"198.18.0.12", "198.18.0.13"}), frozenset({SERVICES}))
    plan = plan_overlay(want({"198.18.0.13", "198.18.0.14"}), have)
    assert [(s.kind, s.peer) for s in plan.steps] == [
        (StepKind.FDB_DEL, "198.18.0.12"),
        (StepKind.FDB_ADD, "198.18.0.14"),
    ]


def test_a_converged_overlay_needs_nothing() -> None:
    have = PresentOverlay(BRIDGE, True, good_link(), frozenset({"198.18.0.12"}), frozenset({SERVICES, "10.42.1.1/24"}))
    assert plan_overlay(want({"198.18.0.12"}), have).converged


def test_a_detached_device_is_enslaved_again_with_a_reason() -> None:
    have = PresentOverlay(BRIDGE, True, good_link(master=0, up=False), frozenset(), frozenset({SERVICES}))
    (step,) = plan_overlay(want(), have).steps
    assert step.kind is StepKind.SET_VXLAN and "not enslaved" in step.reason and "down" in step.reason


def test_wanted_peers_drop_self_and_empty() -> None:
    assert wanted_peers("198.18.0.11", ["198.18.0.11", "", "198.18.0.12"]) == frozenset({"198.18.0.12"})


def test_bad_addresses_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not an IPv4 address"):
        WantedOverlay(vni=1, local="nope", mtu=1450, peers=frozenset())


@given(have_link=links, up=st.booleans(), peers=st.frozensets(addresses, max_size=3))
def test_a_routed_overlay_removes_any_vxlan_and_keeps_the_bridge_parts(
    have_link: VxlanLink | None, up: bool, peers: frozenset[str]
) -> None:
    routed = want(peers, vxlan=False)
    have = PresentOverlay(BRIDGE, up, have_link, frozenset(), frozenset())
    plan = plan_overlay(routed, have)
    assert not {StepKind.CREATE_VXLAN, StepKind.SET_VXLAN, StepKind.FDB_ADD} & {s.kind for s in plan.steps}
    after = simulate(have, plan, routed)
    assert after.vxlan is None and after.bridge_up and SERVICES in after.bridge_addresses
    assert plan_overlay(routed, after).converged
