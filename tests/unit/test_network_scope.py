"""Scoped network states (model/network_scope.py, issue 15 item 3): a host holds only what it needs, and its DNS
answers every name exactly as it would from the whole environment, after asking for what `NameTable.wanted` names.

The property, on random environments (stacks, services with links, external links, LB rules by name and selector,
aliases, external services, sidekicks, compose networks; containers spread over hosts, running or not, healthy or
not): for every host, every local client and every name, either the scoped state answers as the full one does and
wants nothing, or it wants services, and once the server's scope includes them (the agent's `demand`) it answers as
the full one does and wants nothing more. The scoped sections are built by the server's own code
(server/control/network_pass.py `_Scoping`)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.agent.dns_records import NameTable
from corral.model import network_scope
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.server.control import network_pass

HOSTS = ("h0", "h1", "h2")
STACKS = ("shop", "blog")
SERVICES = ("web", "db", "sk", "lb", "al", "ext")


@st.composite
def _environment(draw: st.DrawFn) -> tuple[list[ServiceRecord], list[ContainerRecord]]:
    services: list[ServiceRecord] = []
    containers: list[ContainerRecord] = []
    addresses = iter(f"10.0.{n // 200}.{n % 200 + 2}" for n in range(10_000))
    for stack in STACKS:
        names = draw(st.lists(st.sampled_from(SERVICES), unique=True, min_size=1))
        for name in names:
            labels = {"tier": draw(st.sampled_from(["front", "back"]))}
            lb: dict[str, Any] = {}
            virtual: dict[str, Any] = {}
            if name == "lb":
                rule = draw(st.sampled_from([{"service": "web"}, {"service": "blog/db"}, {"selector": "tier=back"}]))
                lb = {"port_rules": [{"source_port": 80, "target_port": 80, **rule}]}
            elif name == "al":
                virtual = {"kind": "alias", "targets": draw(st.sampled_from([["web"], ["db", "shop/web"]]))}
            elif name == "ext":
                virtual = {"kind": "external", "external_ips": ["203.0.113.7"]}
            sidekick_of = "web" if name == "sk" and "web" in names else ""
            services.append(
                ServiceRecord(
                    stack=stack,
                    name=name,
                    scale=3,
                    labels=labels,
                    sidekicks=("sk",) if name == "web" and "sk" in names else (),
                    sidekick_of=sidekick_of,
                    lb=lb,
                    virtual=virtual,
                )
            )
            if virtual:
                continue
            segmented = stack == "blog" and draw(st.booleans())
            for index in range(1, draw(st.integers(0, 3)) + 1):
                containers.append(
                    ContainerRecord(
                        slot_id=f"{stack}-{name}-{index}-slot",
                        name=f"{stack}-{name}-{index}",
                        stack=stack,
                        service=name,
                        index=index,
                        host_id=draw(st.sampled_from(HOSTS)),
                        ip=next(addresses),
                        running=draw(st.integers(0, 4)) > 0,
                        healthy=draw(st.integers(0, 4)) > 0,
                        primary=sidekick_of,
                        links=tuple(draw(st.lists(st.sampled_from(["db:database", "web", "lb"]), max_size=1))),
                        external_links=tuple(draw(st.lists(st.sampled_from(["blog/web:bw", "shop/db"]), max_size=1))),
                        networks=("front",) if segmented else (),
                        network_aliases=(("front", "api"),) if segmented and name == "web" else (),
                    )
                )
    return services, containers


def _full(services: list[ServiceRecord], containers: list[ContainerRecord], host_id: str) -> NetworkState:
    return NetworkState(
        environment_id="env",
        environment="default",
        settings=NetworkSettings(subnet="10.0.0.0/16"),
        host=HostNetwork(host_id=host_id, name=host_id, address="", slice=""),
        containers=tuple(containers),
        services=tuple(services),
    )


def _scoped(full: NetworkState, demand: set[network_scope.Key]) -> NetworkState:
    shared = network_pass._Shared(nets={}, peers=(), containers=full.containers, services=full.services, hosts=())
    scoping = network_pass._Scoping(shared, ContainerRecord.to_dict)
    containers, services = scoping.sections(full.host.host_id, demand)
    data = full.to_dict()
    data.update(
        containers=list(containers.values()),
        services=list(services.values()),
        scoped=True,
        directory=list(scoping.directory.values()),
    )
    return NetworkState.from_dict(data)


def _names(services: list[ServiceRecord], containers: list[ContainerRecord]) -> list[str]:
    names = ["database", "bw", "api", "nothing", "sk.web", "sk.web.shop", "shop.corral.internal", "x.y.z.w"]
    for service in services:
        names += [service.name, f"{service.name}.{service.stack}", f"{service.name}.{service.stack}.corral.internal"]
    names += [c.name for c in containers] + [f"{c.name}.corral.internal" for c in containers]
    return names


@settings(max_examples=60, deadline=None)
@given(world=_environment())
def test_a_scoped_host_answers_every_name_as_the_whole_environment_does(
    world: tuple[list[ServiceRecord], list[ContainerRecord]],
) -> None:
    services, containers = world
    for host_id in HOSTS:
        full = NameTable(_full(services, containers, host_id))
        scoped = NameTable(_scoped(_full(services, containers, host_id), set()))
        tables: dict[frozenset[network_scope.Key], NameTable] = {}
        clients = [c.ip for c in containers if c.host_id == host_id] + [""]
        for client in clients:
            for name in _names(services, containers):
                expected = full.resolve(name, client)
                wanted = scoped.wanted(name, client)
                if not wanted:
                    assert scoped.resolve(name, client) == expected, (host_id, client, name)
                    continue
                after = tables.get(frozenset(wanted))
                if after is None:
                    after = tables[frozenset(wanted)] = NameTable(_scoped(_full(services, containers, host_id), wanted))
                assert after.wanted(name, client) == set(), (host_id, client, name, wanted)
                assert after.resolve(name, client) == expected, (host_id, client, name, wanted)


@settings(max_examples=100, deadline=None)
@given(world=_environment())
def test_a_host_holds_its_own_containers_and_no_scale_of_what_it_does_not_hold_whole(
    world: tuple[list[ServiceRecord], list[ContainerRecord]],
) -> None:
    services, containers = world
    for host_id in HOSTS:
        state = _scoped(_full(services, containers, host_id), set())
        held = {c.slot_id for c in state.containers}
        assert {c.slot_id for c in containers if c.host_id == host_id} <= held
        assert {(d.stack, d.name) for d in state.directory} == {(s.stack, s.name) for s in services}
        for record in state.services:
            if not record.complete:
                assert record.scale == 0  # a scale change of a service spread over hosts reaches none of them


def test_a_scale_by_one_reaches_only_the_host_of_the_new_container() -> None:
    """Ten hosts, one service of 20 containers: scaling it by one changes the scoped state of one host only."""
    hosts = [f"h{n}" for n in range(10)]
    web = ServiceRecord(stack="app", name="web", scale=20)

    def container(index: int) -> ContainerRecord:
        host = hosts[index % len(hosts)]
        ip = f"10.0.0.{index + 2}"
        return ContainerRecord(f"s{index}", f"app-web-{index}", "app", "web", index, host, ip, True, True)

    before = [container(i) for i in range(20)]
    after = [*before, container(20)]
    scaled = ServiceRecord(stack="app", name="web", scale=21)
    changed = [
        host
        for host in hosts
        if _scoped(_full([web], before, host), set()) != _scoped(_full([scaled], after, host), set())
    ]
    assert changed == [after[-1].host_id]


def test_malformed_demands_are_refused() -> None:
    for bad in ("some", ["no-slash"], [1], ["/x"], ["x/"], ["a" * 600 + "/b"], list(range(20_000))):
        try:
            network_scope.demand_from_wire(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    assert network_scope.demand_from_wire(["shop/web", "shop/web"]) == frozenset({("shop", "web")})
    assert network_scope.demand_from_wire(network_scope.demand_to_wire(network_scope.ALL)) == network_scope.ALL
