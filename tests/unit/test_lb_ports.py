"""LB host ports forwarded by the agent (network/lb_ports.py, agent/lb.py `forwards`): LB containers are created
without Docker's binding of their fixed ports, each port goes to the newest ready LB container of the host, the
rules are written as iptables prints them, and an LB container drains while its ports still send it connections."""

from __future__ import annotations

from corral.agent.drain import Drainer, listening_ports
from corral.agent.lb import forwards, published
from corral.model.lb import LbConfig, PortRule, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, PortSpec
from corral.network.lb_ports import Forward, filter_rules, nat_rules
from corral.runtime.containers import create_arguments

LB = lb_config_to_dict(LbConfig((PortRule(80, 8080, "app"),)))


def _desired(image: str, ip: str = "10.42.1.5") -> DesiredContainer:
    slot = ContainerSlot("s1", "e1", "shop", "lb", 1, "h1", "abc")
    launch = LaunchConfig(image=image, ports=(PortSpec(80, 80), PortSpec(8443, 443), PortSpec(9000)))
    return DesiredContainer(slot=slot, launch=launch, ip=ip, host_ports=((9000, "tcp", 49200),))


def test_an_lb_container_leaves_its_fixed_host_ports_to_the_agent() -> None:
    lb = create_arguments(_desired("corral/haproxy:latest"))
    assert lb.host_config["port_bindings"] == {"9000/tcp": [("", 49200)]}  # a random port stays Docker's
    assert set(lb.config["ports"]) == {(80, "tcp"), (8443, "tcp"), (9000, "tcp")}
    app = create_arguments(_desired("corral/busybox:latest"))
    assert app.host_config["port_bindings"]["80/tcp"] == [("", 80)]
    off_overlay = create_arguments(_desired("corral/haproxy:latest", ip=""))  # no address to forward to
    assert off_overlay.host_config["port_bindings"]["80/tcp"] == [("", 80)]


def _record(name: str, host: str = "h1", *, running: bool = True, ip: str = "10.42.1.5") -> ContainerRecord:
    return ContainerRecord(f"id-{name}", name, "shop", "lb", 1, host, ip, running, True)


def _state(*containers: ContainerRecord) -> NetworkState:
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.1.0/24"),
        containers=containers,
        services=(
            ServiceRecord("shop", "lb", 1, ports=("80:80/tcp", "443:8443/tcp", "9000/tcp"), lb=LB),
            ServiceRecord("shop", "app", 2, ports=("8080:8080/tcp",)),
        ),
    )


def test_each_lb_port_goes_to_the_newest_ready_lb_container_of_this_host() -> None:
    assert published(_state().services[0]) == [("tcp", 80, 80), ("tcp", 443, 8443)]
    old, new = _record("shop-lb-1", ip="10.42.1.5"), _record("shop-lb-1-u1", ip="10.42.1.6")
    state = _state(old, new, _record("shop-lb-2", host="h2", ip="10.42.2.5"))
    assert forwards(state, ["shop-lb-1"]) == [
        Forward("tcp", 80, "10.42.1.5", 80, "shop-lb-1"),
        Forward("tcp", 443, "10.42.1.5", 8443, "shop-lb-1"),
    ]  # the new one is not configured and listening yet
    assert {f.name for f in forwards(state, ["shop-lb-1", "shop-lb-1-u1", "shop-lb-2"])} == {"shop-lb-1-u1"}
    stopped = _state(_record("shop-lb-1", running=False))
    assert forwards(stopped, ["shop-lb-1"]) == []  # a stopping LB gets no new connection
    assert forwards(_state(), []) == []


def test_rules_as_iptables_prints_them() -> None:
    rules = [Forward("tcp", 80, "10.42.1.6", 8080, "shop-lb-1-u1")]
    assert nat_rules(rules) == [
        "-N CORRAL-LB-PORTS",
        "-A CORRAL-LB-PORTS -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.42.1.6:8080",
    ]
    assert filter_rules(rules)[1:] == [
        "-A CORRAL-LB-PORTS -d 10.42.1.6/32 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -j ACCEPT",
        "-A CORRAL-LB-PORTS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    assert filter_rules([]) == ["-N CORRAL-LB-PORTS"]


def test_an_lb_container_drains_while_its_ports_still_send_it_connections() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    fronted = iter([True] * 5 + [False] * 100)  # the switch comes after 5 polls
    state = _state(_record("shop-lb-1"))
    drainer = Drainer(
        lambda: state,
        lambda _: 7,
        fronted=lambda _: next(fronted),
        settle_seconds=0.5,
        clock=lambda: now[0],
        sleep=sleep,
        tables=lambda _: [],
    )
    assert 1.8 < drainer.drain("d1", "shop-lb-1") < 2.0  # 5 polls while fronted, the settle time, 2 more quiet polls


def test_listening_ports_reads_the_listen_rows() -> None:
    table = (
        "  sl  local_address rem_address   st\n"
        "   0: 00000000:0050 00000000:0000 0A\n"
        "   1: 0500A8C0:0050 0200A8C0:C350 01\n"
        "   2: 00000000:002A 00000000:0000 0A\n"
    )
    assert listening_ports([table]) == {80, 42}
