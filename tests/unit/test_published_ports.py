"""Random host ports from the server to Docker: the desired message, the create arguments, the agent's recreate."""

from __future__ import annotations

from dataclasses import replace

from corral.agent.converge import ActionKind, plan_convergence
from corral.model.entities import ObservedContainer
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, PortSpec
from corral.runtime import labels
from corral.runtime.containers import create_arguments, host_ports_label
from corral.server.control.port_pass import random_ports

SLOT = ContainerSlot("s1", "env", "shop", "web", 1, "h1", "hash1")
LAUNCH = LaunchConfig(
    image="corral/busybox:latest",
    ports=(PortSpec(80), PortSpec(53, protocol="udp", host_ip="127.0.0.1"), PortSpec(443, 8443)),
)
WANT = DesiredContainer(SLOT, LAUNCH, host_ports=((80, "tcp", 50001), (53, "udp", 50002)))


def test_random_ports_of_a_launch_config() -> None:
    assert random_ports(LAUNCH) == ((80, "tcp"), (53, "udp"))
    assert random_ports(LaunchConfig(image="x", ports=(PortSpec(80, 80),))) == ()


def test_desired_host_ports_round_trip_and_are_omitted_when_empty() -> None:
    data = WANT.to_dict()
    assert data["host_ports"] == [[80, "tcp", 50001], [53, "udp", 50002]]
    assert DesiredContainer.from_dict(data) == WANT
    assert "host_ports" not in replace(WANT, host_ports=()).to_dict()


def test_random_ports_are_bound_with_their_host_ip_and_labelled() -> None:
    arguments = create_arguments(WANT)
    assert arguments.host_config["port_bindings"] == {
        "80/tcp": [("", 50001)],
        "53/udp": [("127.0.0.1", 50002)],
        "443/tcp": [("", 8443)],
    }
    assert arguments.config["labels"][labels.HOST_PORTS] == "80/tcp:50001,53/udp:50002"
    # before the server picked them, the ports are only exposed (and the agent recreates once they come)
    early = create_arguments(replace(WANT, host_ports=()))
    assert early.host_config["port_bindings"] == {"443/tcp": [("", 8443)]}
    assert labels.HOST_PORTS not in early.config["labels"]


def _observed(label: str | None) -> ObservedContainer:
    found = {labels.ENVIRONMENT: "env", labels.CONTAINER: "s1", labels.CONFIG_HASH: "hash1"}
    if label is not None:
        found[labels.HOST_PORTS] = label
    return ObservedContainer(docker_id="d1", name="shop-web-1", image="x", state="running", labels=found)


def test_the_agent_recreates_a_container_whose_host_ports_differ() -> None:
    same = plan_convergence([WANT], [_observed(host_ports_label(WANT.host_ports))], {}, environment_id="env")
    assert same == []
    for label in (None, "80/tcp:50009,53/udp:50002"):
        (action,) = plan_convergence([WANT], [_observed(label)], {}, environment_id="env")
        assert action.kind is ActionKind.RECREATE
        assert "host ports changed" in action.reason
    # a container without random ports and without the label stays
    plain = replace(WANT, host_ports=())
    assert plan_convergence([plain], [_observed(None)], {}, environment_id="env") == []


def test_published_ports_as_views_show_them() -> None:
    from corral.server.views.stack_views import published_ports_view

    assert published_ports_view(LAUNCH, WANT.host_ports, "198.18.0.11") == [
        "198.18.0.11:8443->443/tcp",
        "198.18.0.11:50001->80/tcp",
        "127.0.0.1:50002->53/udp",
    ]
    assert published_ports_view(None, (), "") == []


def test_the_scheduler_counts_a_slots_random_ports_as_taken_on_its_host() -> None:
    from corral.model.stack import ServiceSpec, SlotRecord
    from corral.orchestrator.pass_inputs import slot_view

    record = SlotRecord(SLOT, "stack-id", "service-id", host_ports=WANT.host_ports)
    view = slot_view(record, None, ServiceSpec("web", LAUNCH))
    assert view.published_ports == {(8443, "tcp"), (50001, "tcp"), (50002, "udp")}


def test_a_container_is_never_created_without_a_random_port_it_publishes() -> None:
    from corral.agent.converge import unassigned_random_ports
    from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, PortSpec

    slot = ContainerSlot("s1", "env", "shop", "web", 1, "h1", "hash")
    launch = LaunchConfig(image="x", ports=(PortSpec(80), PortSpec(53, protocol="udp"), PortSpec(443, 8443)))
    assert unassigned_random_ports(DesiredContainer(slot, launch)) == "80/tcp, 53/udp"
    partly = DesiredContainer(slot, launch, host_ports=((80, "tcp", 50000),))
    assert unassigned_random_ports(partly) == "53/udp"
    full = DesiredContainer(slot, launch, host_ports=((80, "tcp", 50000), (53, "udp", 50001)))
    assert unassigned_random_ports(full) == ""
