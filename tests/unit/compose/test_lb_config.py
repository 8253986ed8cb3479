"""Load balancer services from rancher-compose `lb_config` and the v1 labels (compose/lb_config.py, model/lb.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.compose.lb_config import LB_RUNTIME_IMAGE, order_rules, read_lb_config
from corral.model.errors import InvalidInput
from corral.model.lb import LbConfig, LbProtocol, PortRule, Stickiness, lb_config_from_dict, lb_config_to_dict

from .helpers import RC, stack

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.7.15
    ports: ["80:80", "443:443"]
  a:
    image: nginx
  b:
    image: nginx
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      certs: [shop]
      port_rules:
      - {source_port: 80, target_port: 8080, service: a, hostname: a.example}
      - {source_port: 80, target_port: "9090", service: b, hostname: b.example, path: /api, priority: 1}
      - {source_port: 443, target_port: 8080, service: a, protocol: https}
      stickiness_policy: {cookie: SRV, mode: insert, indirect: true}
      config: "# extra"
"""


def test_an_lb_service_gets_its_rules_and_runs_corrals_haproxy() -> None:
    spec = stack(COMPOSE, RANCHER)
    lb = spec.service("lb")
    assert lb is not None and lb.lb_config is not None
    assert lb.launch.image == LB_RUNTIME_IMAGE
    config = lb_config_from_dict(lb.lb_config)
    assert [(r.source_port, r.target_port, r.service, r.hostname, r.path) for r in config.port_rules] == [
        (80, 9090, "b", "b.example", "/api"),  # priority 1 first
        (80, 8080, "a", "a.example", ""),
        (443, 8080, "a", "", ""),
    ]
    assert config.port_rules[2].protocol is LbProtocol.HTTPS
    assert config.certs == ("shop",) and config.config == "# extra"
    assert config.stickiness == Stickiness(cookie="SRV", indirect=True)
    assert any("runs as corral/haproxy" in w for w in spec.warnings)
    assert any("target_port: the port '9090' is a string" in w for w in spec.warnings)
    other = spec.service("a")
    assert other is not None and other.lb_config is None and "lb_config" not in other.to_dict()


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        ("{source_port: 0, target_port: 80, service: a}", "port_rules[0].source_port", "within 1-65535"),
        ("{source_port: 42, target_port: 80, service: a}", "port_rules[0].source_port", "health check port"),
        ("{source_port: 80, target_port: 80}", "port_rules[0].service", "needs a service or a selector"),
        ("{source_port: 80, target_port: 80, service: a, protocol: udp}", "port_rules[0].protocol", "not one of"),
        ("{source_port: 80, target_port: 80, service: a, protocol: tcp, hostname: x.y}", "port_rules[0]", "needs"),
        ("{source_port: 80, target_port: 80, service: a, path: api}", "port_rules[0].path", "must start with /"),
        ("{source_port: 80, target_port: 80, service: a, hostname: 'a b'}", "port_rules[0].hostname", "host name"),
        ("{source_port: 80, target_port: 80, service: a, colour: red}", "port_rules[0]", "unknown keys colour"),
        ("{source_port: 443, target_port: 80, service: a, protocol: https}", "certs", "needs a certificate"),
    ],
)
def test_bad_rules_name_the_file_service_field_and_reason(rule: str, field: str, reason: str) -> None:
    rancher = f"version: '2'\nservices:\n  lb:\n    lb_config:\n      port_rules: [{rule}]\n"
    with pytest.raises(InvalidInput) as caught:
        stack(COMPOSE, rancher)
    assert caught.value.field == f"{RC}:services.lb.lb_config.{field}"
    assert caught.value.message.startswith(f"{RC}: services.lb.lb_config.{field}")
    assert reason in caught.value.message


def test_v1_labels_become_port_rules_with_a_warning() -> None:
    compose = """\
    lb:
      image: rancher/lb-service-haproxy
      ports: ["80:80", "443:443"]
      labels:
        io.rancher.loadbalancer.target.web: "a.example:80/app=8080, 443=8443"
        io.rancher.loadbalancer.ssl.ports: "443"
    web:
      image: nginx
    """
    spec = stack(compose)
    lb = spec.service("lb")
    assert lb is not None and lb.lb_config is not None
    rules = lb_config_from_dict(lb.lb_config).port_rules
    assert rules == (
        PortRule(80, 8080, "web", LbProtocol.HTTP, "a.example", "/app"),
        PortRule(443, 8443, "web", LbProtocol.HTTPS),
    )
    assert any("v1 io.rancher.loadbalancer.target.* labels" in w for w in spec.warnings)


def test_a_v1_route_to_a_port_not_published_is_refused() -> None:
    with pytest.raises(InvalidInput, match="routes port 81, which the service does not publish"):
        read_lb_config("lb", None, {"io.rancher.loadbalancer.target.web": ":81=8080"}, [80])


_rules = st.lists(
    st.builds(
        PortRule,
        source_port=st.integers(1, 65535).filter(lambda p: p != 42),
        target_port=st.integers(1, 65535),
        service=st.sampled_from(["a", "b", "s/c"]),
        protocol=st.sampled_from([LbProtocol.HTTP, LbProtocol.TCP]),
        priority=st.integers(0, 5),
    ),
    max_size=6,
)


@given(_rules)
def test_rules_round_trip_and_order_is_stable_by_priority(rules: list[PortRule]) -> None:
    config = LbConfig(tuple(order_rules(rules)), stickiness=Stickiness(cookie="c"))
    assert lb_config_from_dict(lb_config_to_dict(config)) == config
    ordered = order_rules(rules)
    with_priority = [r.priority for r in ordered if r.priority]
    assert with_priority == sorted(with_priority)
    assert [r for r in ordered if not r.priority] == [r for r in rules if not r.priority]
    assert ordered[: len(with_priority)] == [r for r in ordered if r.priority]
