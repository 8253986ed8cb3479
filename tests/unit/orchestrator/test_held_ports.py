"""Every host port is the user's except the few Corral holds (issue 17 item 9): 80 and 53 are free to publish,
Corral's own listeners are refused with a reason naming the holder, and the random allocator never hands them out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.model.network import DNS_LISTEN_PORT, HELD_HOST_PORTS, METADATA_LISTEN_PORT
from corral.orchestrator.host_ports import PortNeed, PortRange, allocate_host_ports
from corral.orchestrator.scheduling import held_ports_reason

from .harness import active_hosts, run, service


def test_ports_80_and_53_are_free_for_containers() -> None:
    plan = run(service(2, ports=[80, 53]), [], active_hosts(2))
    assert len(plan.place) == 2 and not plan.unplaced


def test_a_port_corral_holds_is_refused_naming_the_holder() -> None:
    plan = run(service(2, ports=[METADATA_LISTEN_PORT]), [], active_hosts(3))
    assert not plan.place
    port = f"{METADATA_LISTEN_PORT}/tcp"
    reason = f"port {port} is held on every host ({port} by Corral's metadata service)"
    assert plan.unplaced == ((1, reason), (2, reason))


def test_several_held_ports_are_named_together() -> None:
    reason = held_ports_reason([(DNS_LISTEN_PORT, "udp"), (80, "tcp"), (4789, "udp")])
    assert reason == (
        f"ports 4789/udp, {DNS_LISTEN_PORT}/udp are held on every host"
        f" (4789/udp by Corral's overlay (VXLAN); {DNS_LISTEN_PORT}/udp by Corral's DNS for containers)"
    )
    assert held_ports_reason([(80, "tcp"), (53, "udp"), (53, "tcp")]) is None


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, min_size=1))
def test_the_allocator_never_hands_out_a_held_port(slots: list[str]) -> None:
    held = sorted(p for p, proto in HELD_HOST_PORTS if proto == "udp")
    low = held[-1] - 2  # a range of 4 ports that includes a held one
    needs = [PortNeed(s, "h1", ((53, "udp"),)) for s in slots]
    result = allocate_host_ports(needs, {}, PortRange(low, low + 3))
    given_ports = [hp for s in slots for _, _, hp in result.ports[s]]
    assert held[-1] not in given_ports
    assert len(set(given_ports)) == len(given_ports)
    assert len(given_ports) == min(len(slots), 3)
