"""The DNS name table: per-client short names, aliases, sidekicks, container names, only live containers answered,
case-insensitivity, what is forwarded and what is NXDOMAIN."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.agent.dns_records import (
    FORWARD,
    NXDOMAIN,
    Lookup,
    NameTable,
    Outcome,
    shuffled,
    split_name,
)
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord


def _container(
    stack: str,
    service: str,
    index: int,
    ip: str,
    *,
    running: bool = True,
    healthy: bool = True,
    primary: str = "",
    links: tuple[str, ...] = (),
    external_links: tuple[str, ...] = (),
    networks: tuple[str, ...] = (),
    network_aliases: tuple[tuple[str, str], ...] = (),
) -> ContainerRecord:
    return ContainerRecord(
        slot_id=f"{stack}-{service}-{index}-slot",
        name=f"{stack}-{service}-{index}",
        stack=stack,
        service=service,
        index=index,
        host_id="h1",
        ip=ip,
        running=running,
        healthy=healthy,
        primary=primary,
        links=links,
        external_links=external_links,
        networks=networks,
        network_aliases=network_aliases,
    )


def _state(containers: list[ContainerRecord], services: list[ServiceRecord] | None = None) -> NetworkState:
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(subnet="198.18.64.0/18"),
        host=HostNetwork("h1", "one", "198.18.0.11", "198.18.64.0/24"),
        containers=tuple(containers),
        services=tuple(services or ()),
    )


WEB = [_container("shop", "web", 1, "10.0.0.11"), _container("shop", "web", 2, "10.0.0.12")]
DB = _container("shop", "db", 1, "10.0.0.21")
CLIENT = _container("shop", "app", 1, "10.0.0.31", links=("db:database", "web"), external_links=("blog/web:blogweb",))
BLOG = _container("blog", "web", 1, "10.0.0.41")
SIDE = _container("shop", "logs", 1, "10.0.0.51", primary="web")
OFFLINE = _container("shop", "cache", 1, "")
TABLE = NameTable(
    _state(
        [*WEB, DB, CLIENT, BLOG, SIDE, OFFLINE],
        [ServiceRecord("shop", "web", 2, sidekicks=("logs",)), ServiceRecord("shop", "logs", 2, sidekick_of="web")],
    )
)
SHOP_WEB = ("10.0.0.11", "10.0.0.12")


def _ips(lookup: Lookup) -> tuple[str, ...]:
    assert lookup.outcome is Outcome.ANSWER, lookup
    return lookup.addresses


def test_short_names_are_the_clients_own_stack() -> None:
    assert _ips(TABLE.resolve("web", CLIENT.ip)) == SHOP_WEB
    assert _ips(TABLE.resolve("web", BLOG.ip)) == ("10.0.0.41",)
    assert _ips(TABLE.resolve("db.", DB.ip)) == ("10.0.0.21",)


def test_service_dot_stack_and_fqdn_for_everyone() -> None:
    for client in (CLIENT.ip, BLOG.ip, "", "192.0.2.1"):
        assert _ips(TABLE.resolve("web.shop", client)) == SHOP_WEB
        assert _ips(TABLE.resolve("web.shop.corral.internal.", client)) == SHOP_WEB
        assert _ips(TABLE.resolve("web.blog.corral.internal", client)) == ("10.0.0.41",)


def test_unknown_clients_get_no_short_names() -> None:
    assert TABLE.resolve("web", "192.0.2.1") == FORWARD
    assert TABLE.resolve("web", "") == FORWARD
    assert TABLE.resolve("logs.web", "") == FORWARD


def test_case_insensitive() -> None:
    assert _ips(TABLE.resolve("WEB.Shop.Corral.Internal", "")) == SHOP_WEB
    assert _ips(TABLE.resolve("Web", CLIENT.ip)) == SHOP_WEB
    mixed = NameTable(_state([_container("Shop", "Web", 1, "10.0.0.1")]))
    assert _ips(mixed.resolve("web.shop", "")) == ("10.0.0.1",)


def test_link_aliases_belong_to_the_client() -> None:
    assert _ips(TABLE.resolve("database", CLIENT.ip)) == ("10.0.0.21",)
    assert _ips(TABLE.resolve("blogweb", CLIENT.ip)) == ("10.0.0.41",)
    assert _ips(TABLE.resolve("web", CLIENT.ip)) == SHOP_WEB  # "web" link without alias: the service itself
    assert TABLE.resolve("database", DB.ip) == FORWARD  # db has no such link
    # the search list's expansion of an alias works too
    assert _ips(TABLE.resolve("database.shop.corral.internal", CLIENT.ip)) == ("10.0.0.21",)
    assert TABLE.resolve("database.shop.corral.internal", DB.ip) == NXDOMAIN


def test_an_alias_wins_over_a_service_of_the_same_name() -> None:
    client = _container("shop", "app", 1, "10.0.0.31", external_links=("blog/web:web",))
    table = NameTable(_state([*WEB, BLOG, client]))
    assert _ips(table.resolve("web", client.ip)) == ("10.0.0.41",)
    assert _ips(table.resolve("web.shop", client.ip)) == SHOP_WEB


def test_sidekick_names() -> None:
    assert _ips(TABLE.resolve("logs.web", CLIENT.ip)) == ("10.0.0.51",)
    assert _ips(TABLE.resolve("logs.web.shop", "")) == ("10.0.0.51",)
    assert _ips(TABLE.resolve("logs.web.shop.corral.internal", "")) == ("10.0.0.51",)
    assert _ips(TABLE.resolve("logs", CLIENT.ip)) == ("10.0.0.51",)  # a sidekick is a service of the stack too


def test_container_names() -> None:
    assert _ips(TABLE.resolve("shop-web-2", "")) == ("10.0.0.12",)
    assert _ips(TABLE.resolve("shop-web-2.corral.internal", CLIENT.ip)) == ("10.0.0.12",)
    assert TABLE.resolve("shop-cache-1", "") == NXDOMAIN  # ours, but off the overlay


def test_owned_names_without_live_containers_are_nxdomain_never_forwarded() -> None:
    assert TABLE.resolve("cache", CLIENT.ip) == NXDOMAIN
    assert TABLE.resolve("cache.shop", "") == NXDOMAIN
    assert TABLE.resolve("nothing.shop.corral.internal", "") == NXDOMAIN
    assert TABLE.resolve("a.b.c.d.corral.internal", "") == NXDOMAIN
    assert TABLE.resolve("corral.internal", "").outcome is Outcome.ANSWER  # the apex exists, without A records
    assert TABLE.resolve("shop.corral.internal", "").outcome is Outcome.ANSWER


def test_other_names_are_forwarded() -> None:
    for name in ("example.com", "www.example.com.", "localhost", "nothing", "web.nostack", "a.b.c.d", "", "."):
        assert TABLE.resolve(name, CLIENT.ip) == FORWARD, name


def test_only_running_healthy_containers_with_an_address_are_answered() -> None:
    containers = [
        _container("s", "web", 1, "10.0.0.1"),
        _container("s", "web", 2, "10.0.0.2", healthy=False),
        _container("s", "web", 3, "10.0.0.3", running=False),
        _container("s", "web", 4, ""),
    ]
    table = NameTable(_state(containers))
    assert _ips(table.resolve("web.s", "")) == ("10.0.0.1",)
    assert table.resolve("s-web-2", "") == NXDOMAIN


def test_a_client_on_networks_resolves_only_what_it_may_reach() -> None:
    front = _container("seg", "front", 1, "10.0.1.1", networks=("seg_front",))
    back = _container("seg", "back", 1, "10.0.1.2", networks=("seg_back",))
    both = [_container("seg", "both", i, f"10.0.1.{2 + i}", networks=("seg_back", "seg_front")) for i in (1, 2)]
    flat = _container("flat", "probe", 1, "10.0.1.9")
    table = NameTable(_state([front, back, *both, flat]))
    assert table.resolve("front", back.ip) == NXDOMAIN  # Compose's DNS does not know it on `back`
    assert table.resolve("seg-front-1", back.ip) == NXDOMAIN
    assert _ips(table.resolve("front", both[0].ip)) == ("10.0.1.1",)
    assert _ips(table.resolve("both", back.ip)) == ("10.0.1.3", "10.0.1.4")
    assert _ips(table.resolve("probe.flat", back.ip)) == ("10.0.1.9",)  # the flat network is everyone's
    assert _ips(table.resolve("front.seg", flat.ip)) == ("10.0.1.1",)
    assert _ips(table.resolve("front.seg", "")) == ("10.0.1.1",)  # the host itself


def test_network_aliases_answer_on_their_network_only() -> None:
    api = _container(
        "seg", "api", 1, "10.0.2.1", networks=("seg_back", "seg_front"), network_aliases=(("seg_front", "backend"),)
    )
    web = _container("seg", "web", 1, "10.0.2.2", networks=("seg_front",))
    db = _container("seg", "db", 1, "10.0.2.3", networks=("seg_back",))
    table = NameTable(_state([api, web, db]))
    assert _ips(table.resolve("backend", web.ip)) == ("10.0.2.1",)
    assert table.resolve("backend", db.ip) == FORWARD  # not a name on `back`
    assert ContainerRecord.from_dict(api.to_dict()) == api


def test_split_name() -> None:
    assert split_name("Web.Shop.") == ("web", "shop")
    assert split_name(".") == ()
    assert split_name("a..b") == ("a", "b")


# -- properties ---------------------------------------------------------------------------------------------------

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)


@st.composite
def _environments(draw: st.DrawFn) -> list[ContainerRecord]:
    stacks = draw(st.lists(_label, min_size=1, max_size=3, unique=True))
    services = draw(st.lists(_label, min_size=1, max_size=3, unique=True))
    containers = []
    address = 1
    for stack in stacks:
        for service in services:
            for index in range(1, draw(st.integers(0, 3)) + 1):
                running, healthy, on_overlay = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
                ip = f"10.1.{address // 250}.{address % 250 + 1}" if on_overlay else ""
                address += 1
                containers.append(_container(stack, service, index, ip, running=running, healthy=healthy))
    return containers


@settings(max_examples=200, deadline=None)
@given(_environments(), st.data())
def test_answers_are_exactly_the_live_containers(containers: list[ContainerRecord], data: st.DataObject) -> None:
    table = NameTable(_state(containers))
    clients = [c.ip for c in containers if c.ip] + ["", "192.0.2.9"]
    client_ip = data.draw(st.sampled_from(clients))
    client = table.client(client_ip)
    for stack, service in {(c.stack, c.service) for c in containers}:
        live = tuple(
            sorted(
                c.ip
                for c in containers
                if (c.stack, c.service) == (stack, service) and c.running and c.healthy and c.ip
            )
        )
        expected = Lookup(Outcome.ANSWER, live) if live else NXDOMAIN
        spelling = data.draw(st.sampled_from([str.upper, str.lower, str.title]))
        assert table.resolve(spelling(f"{service}.{stack}.corral.internal."), client_ip) == expected
        assert table.resolve(f"{service}.{stack}", client_ip) == expected
        short = table.resolve(service, client_ip)
        if client is not None and client.stack == stack:
            assert short == expected
        elif client is None:
            assert short == FORWARD  # an unknown client has no stack


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=2, max_size=6, unique=True), st.integers(0, 2**32))
def test_random_order_covers_every_address(octets: list[int], seed: int) -> None:
    addresses = [f"10.0.0.{octet}" for octet in octets]
    rng = random.Random(seed)
    firsts: Counter[str] = Counter()
    for _ in range(60 * len(addresses)):
        order = shuffled(addresses, rng)
        assert sorted(order) == sorted(addresses)
        firsts[order[0]] += 1
    assert set(firsts) == set(addresses)  # every container gets to be first
