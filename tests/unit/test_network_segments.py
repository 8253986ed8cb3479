"""Compose networks as overlay segments: which packets a host drops (network/segments.py, pure)."""

from __future__ import annotations

import dataclasses

from corral.model.network import ContainerRecord
from corral.network.segments import CHAIN, segment_rules


def record(name: str, ip: str, host: str, *networks: str) -> ContainerRecord:
    return ContainerRecord(
        slot_id=name, name=name, stack="s", service=name, index=1, host_id=host, ip=ip, running=True, healthy=True,
        networks=tuple(networks),
    )  # fmt: skip


FRONT = record("front", "10.42.1.2", "h1", "s_front")
BACK = record("back", "10.42.2.2", "h2", "s_back")
BOTH = record("both", "10.42.1.3", "h1", "s_back", "s_front")
FLAT = record("flat", "10.42.1.4", "h1")


def test_a_host_drops_traffic_to_its_containers_from_those_sharing_no_network() -> None:
    everyone = [FRONT, BACK, BOTH, FLAT]
    assert segment_rules(everyone, "h1") == [
        f"-N {CHAIN}",
        f"-A {CHAIN} -s 10.42.2.2/32 -d 10.42.1.2/32 -j DROP",  # back -> front (front is here)
    ]
    assert segment_rules(everyone, "h2") == [
        f"-N {CHAIN}",
        f"-A {CHAIN} -s 10.42.1.2/32 -d 10.42.2.2/32 -j DROP",  # front -> back (back is here)
    ]


def test_flat_containers_and_containers_without_address_are_left_alone() -> None:
    no_ip = record("pending", "", "h1", "s_other")
    assert segment_rules([FLAT, FRONT, no_ip], "h1") == [f"-N {CHAIN}"]
    assert segment_rules([], "h1") == [f"-N {CHAIN}"]


def test_container_records_carry_networks_only_when_segmented() -> None:
    assert "networks" not in FLAT.to_dict()
    assert ContainerRecord.from_dict(BOTH.to_dict()) == BOTH
    assert ContainerRecord.from_dict(FLAT.to_dict()) == FLAT


def test_an_internal_container_gets_no_egress_outside_the_overlay_from_its_own_host() -> None:
    inner = dataclasses.replace(record("inner", "10.42.1.9", "h1", "s_back"), internal=True)
    far = dataclasses.replace(record("far", "10.42.2.9", "h2", "s_back"), internal=True)
    rules = segment_rules([inner, far, BACK, FLAT], "h1", "10.42.0.0/16")
    assert rules[-1] == f"-A {CHAIN} -s 10.42.1.9/32 ! -d 10.42.0.0/16 -j DROP"
    assert not any("10.42.2.9/32 !" in r for r in rules)  # h2 filters its own container
    assert not any("-d 10.42.1.9/32" in r and "10.42.2.2" in r for r in rules)  # same network: reachable
    assert segment_rules([inner], "h1") == [f"-N {CHAIN}"]  # no subnet known (yet): nothing to compare with
    assert ContainerRecord.from_dict(inner.to_dict()) == inner
    assert "internal" not in BACK.to_dict()
