"""External services and aliases (issue 19 item 4): read from Rancher's images and rancher-compose keys (scale 0,
errors naming the field), answered in DNS (A records for IPs, a CNAME then the target's addresses for a hostname,
an alias's linked services' live containers), and used as load balancer targets."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, DNSRecord

from corral.agent.dns import DnsServer
from corral.agent.dns_records import NameTable, Outcome
from corral.agent.lb import wanted_configs
from corral.compose.pipeline import build_stack
from corral.model.errors import InvalidInput
from corral.model.lb import LbConfig, PortRule, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.model.virtual import Virtual, image_kind

COMPOSE = """\
version: '2'
services:
  db:
    image: rancher/external-service
  search:
    image: rancher/external-service:latest
  both:
    image: rancher/dns-service
    links: [a]
    external_links: [other/b]
  a:
    image: corral/busybox:latest
    links: [db, both:web]
"""
RANCHER = """\
version: '2'
services:
  db:
    external_ips: ["198.18.5.1", "198.18.5.2"]
  search:
    hostname: Search.Example.net
"""


def _build(compose: str = COMPOSE, rancher: str = RANCHER):  # type: ignore[no-untyped-def]
    return build_stack(
        "web", "docker-compose.yml", compose, ("rancher-compose.yml", rancher), answers={}, env_files={}, base_dir=None
    )


def test_compose_reads_external_services_and_aliases_with_scale_zero() -> None:
    stack = _build()
    specs = {s.name: s for s in stack.services}
    assert image_kind("rancher/external-service:v0.1") == "external" and image_kind("corral/busybox") == ""
    assert specs["db"].scale == 0 and Virtual.from_dict(specs["db"].virtual) == Virtual(
        "external", ("198.18.5.1", "198.18.5.2")
    )
    assert Virtual.from_dict(specs["search"].virtual) == Virtual("external", hostname="search.example.net")
    assert Virtual.from_dict(specs["both"].virtual) == Virtual("alias", targets=("a", "other/b"))
    assert specs["both"].scale == 0 and specs["a"].virtual is None and specs["a"].scale == 1


def test_a_health_check_on_a_hostname_or_an_alias_is_dropped_saying_why() -> None:
    rancher = (
        RANCHER.replace(
            "    hostname: Search.Example.net\n", "    hostname: Search.Example.net\n    health_check: {port: 80}\n"
        )
        + "  both:\n    health_check: {port: 80}\n"
    )
    stack = _build(rancher=rancher)
    assert sorted(w for w in stack.warnings if "health_check" in w) == [
        "rancher-compose.yml: services.both.health_check: not applied: an alias has no address of its own to probe"
        " (its services' containers are checked by their own checks)",
        "rancher-compose.yml: services.search.health_check: not applied: a hostname is a CNAME: it has no address"
        " of ours to probe (DNS answers it as it resolves)",
    ]
    specs = {s.name: s for s in stack.services}
    for name in ("search", "both"):
        assert specs[name].health_check is None and "health_check" not in (specs[name].virtual or {})


def test_a_health_check_on_external_ips_is_kept_for_the_agents() -> None:
    rancher = RANCHER.replace(
        '    external_ips: ["198.18.5.1", "198.18.5.2"]\n',
        '    external_ips: ["198.18.5.1", "198.18.5.2"]\n'
        "    health_check: {port: 5432, interval: 1000, response_timeout: 500, healthy_threshold: 1,"
        " unhealthy_threshold: 2, request_line: GET /ok HTTP/1.0}\n",
    )
    stack = _build(rancher=rancher)
    assert not [w for w in stack.warnings if "health_check" in w]
    db = next(s for s in stack.services if s.name == "db")
    virtual = Virtual.from_dict(db.virtual)
    assert virtual is not None and virtual.health_check is not None
    check = virtual.health_check
    assert (check.port, check.request_line, check.interval_ms, check.response_timeout_ms) == (
        5432,
        "GET /ok HTTP/1.0",
        1000,
        500,
    )
    assert (check.healthy_threshold, check.unhealthy_threshold) == (1, 2)
    assert db.health_check is None and db.scale == 0  # no container: nothing for the orchestrator to replace
    assert Virtual.from_dict(virtual.to_dict()) == virtual


def test_a_command_health_check_on_external_ips_is_dropped_saying_a_port_is_needed() -> None:
    compose = COMPOSE.replace(
        "  db:\n    image: rancher/external-service\n",
        "  db:\n    image: rancher/external-service\n    healthcheck: {test: [CMD, 'true']}\n",
    )
    stack = _build(compose=compose)
    assert [w for w in stack.warnings if "health_check" in w] == [
        "rancher-compose.yml: services.db.health_check: not applied: an external IP is probed on a port (give `port`,"
        " and `request_line` for HTTP); a command needs a container"
    ]
    virtual = Virtual.from_dict(next(s for s in stack.services if s.name == "db").virtual)
    assert virtual is not None and virtual.health_check is None


def test_a_bad_health_check_on_external_ips_is_refused_naming_the_field() -> None:
    rancher = RANCHER.replace(
        '    external_ips: ["198.18.5.1", "198.18.5.2"]\n',
        '    external_ips: ["198.18.5.1", "198.18.5.2"]\n    health_check: {port: 80, interval: -5}\n',
    )
    with pytest.raises(InvalidInput) as caught:
        _build(rancher=rancher)
    assert "interval" in caught.value.message


@pytest.mark.parametrize(
    ("rancher", "says"),
    [
        ("version: '2'\nservices:\n  db: {external_ips: [nope]}\n", "services.db.external_ips: 'nope' is not an IP"),
        ("version: '2'\nservices:\n  db: {}\n", "services.db: an external service needs external_ips or hostname"),
        ("version: '2'\nservices:\n  db: {hostname: 'a b'}\n", "services.db.hostname: 'a b' is not a host name"),
    ],
)
def test_bad_external_services_name_the_field(rancher: str, says: str) -> None:
    compose = "version: '2'\nservices:\n  db:\n    image: rancher/external-service\n"
    with pytest.raises(InvalidInput) as caught:
        _build(compose, rancher)
    assert says in caught.value.message


def _state() -> NetworkState:
    def container(service: str, index: int, ip: str, stack: str = "web", **extra: object) -> ContainerRecord:
        return ContainerRecord(f"s-{service}{index}", f"{stack}-{service}-{index}", stack, service, index, "h1", ip,
                               True, bool(extra.pop("healthy", True)), **extra)  # type: ignore[arg-type]  # fmt: skip

    lb = LbConfig(
        (
            PortRule(80, 8080, "db", hostname="db.example"),
            PortRule(80, 8080, "search", hostname="s.example"),
            PortRule(80, 8080, "both"),
        )
    )
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.0.0/24"),
        containers=(
            container("a", 1, "10.42.0.5", links=("db", "both:web")),
            container("a", 2, "10.42.0.6", healthy=False),
            container("b", 1, "10.42.0.7", stack="other"),
            container("lb", 1, "10.42.0.9"),
        ),
        services=(
            ServiceRecord("web", "db", 0, virtual=Virtual("external", ("198.18.5.1", "198.18.5.2")).to_dict()),
            ServiceRecord("web", "search", 0, virtual=Virtual("external", hostname="search.example.net").to_dict()),
            ServiceRecord("web", "both", 0, virtual=Virtual("alias", targets=("a", "other/b")).to_dict()),
            ServiceRecord("web", "a", 2),
            ServiceRecord("other", "b", 1),
            ServiceRecord("web", "lb", 1, lb=lb_config_to_dict(lb)),
        ),
    )


def test_dns_answers_external_ips_a_cname_and_an_aliases_live_containers() -> None:
    table = NameTable(_state())
    client = "10.42.0.5"
    assert table.resolve("db", client).addresses == ("198.18.5.1", "198.18.5.2")
    assert table.resolve("db.web.corral.internal").addresses == ("198.18.5.1", "198.18.5.2")
    assert table.resolve("both.web").addresses == ("10.42.0.5", "10.42.0.7")  # a-2 is unhealthy
    assert table.resolve("web", client).addresses == ("10.42.0.5", "10.42.0.7")  # a link alias to the alias
    cname = table.resolve("search.web")
    assert cname.outcome is Outcome.ANSWER and cname.cname == "search.example.net"

    server = DnsServer(address="127.0.0.1", port=0)
    server.update(_state())
    assert server.answer_locally(DNSRecord.question("search.web").pack(), client) == cname  # upstream chases it
    reply = DNSRecord.parse(
        server.cname_reply(DNSRecord.question("search.web"), "search.example.net", ["192.0.2.8"], udp=True)
    )
    assert [(QTYPE[r.rtype], str(r.rdata)) for r in reply.rr] == [("CNAME", "search.example.net."), ("A", "192.0.2.8")]


def test_lb_targets_are_external_ips_hostnames_and_the_aliased_containers() -> None:
    text = wanted_configs(_state())["web-lb-1"].config
    servers = sorted(line.split()[1:3] for line in text.splitlines() if line.strip().startswith("server "))
    assert servers == [
        ["db-198.18.5.1", "198.18.5.1:8080"],
        ["db-198.18.5.2", "198.18.5.2:8080"],
        ["other-b-1", "10.42.0.7:8080"],
        ["search-search.example.net", "search.example.net:8080"],
        ["web-a-1", "10.42.0.5:8080"],
    ]
    assert "search.example.net:8080 check init-addr last,libc,none" in text
