"""model/standalone.py: a run request checked field by field (each error names its field), turned into the hidden
stack's pinned service; the Docker name of its container is its own name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.stack import STANDALONE_STACK, ContainerSlot, PortSpec, ServiceSpec
from corral.model.standalone import parse_port, service_spec, validate_run

GOOD = {"name": "web", "image": "corral/busybox:latest", "command": ["sleep", "5"], "env": {"B": "2", "A": "1"}}


def test_a_good_request_becomes_a_pinned_service_of_scale_one() -> None:
    run = validate_run({**GOOD, "ports": ["8080:80", "53/udp"], "labels": {"team": "x"}}, default_name="unused")
    spec = service_spec(run, "h1")
    assert (spec.name, spec.scale, spec.pinned_host) == ("web", 1, "h1")
    assert spec.launch.environment == (("A", "1"), ("B", "2"))
    assert spec.launch.ports == (PortSpec(80, 8080), PortSpec(53, None, "udp"))
    assert spec.launch.run_once and spec.launch.restart == "no"  # Docker's `no`: not restarted
    assert not service_spec(validate_run({**GOOD, "restart": "always"}, default_name="x"), "h1").launch.run_once
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert "pinned_host" not in ServiceSpec(name="s", launch=spec.launch).to_dict()  # stored specs stay the same


def test_the_default_name_is_used_when_none_is_given() -> None:
    assert validate_run({"image": "corral/busybox"}, default_name="busybox-1a2b3c").name == "busybox-1a2b3c"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Web"}, "name"),
        ({"name": 3}, "name"),
        ({"image": None}, "image"),
        ({"image": "a b"}, "image"),
        ({"command": "sleep 5"}, "command"),
        ({"command": ["ok", 3]}, "command"),
        ({"env": ["A=1"]}, "env"),
        ({"env": {"A B": "1"}}, "env"),
        ({"env": {"A": 1}}, "env.A"),
        ({"ports": "80"}, "ports"),
        ({"ports": ["70000:80"]}, "ports"),
        ({"ports": ["80:80/sctp"]}, "ports"),
        ({"ports": ["80:80", "80:81"]}, "ports"),
        ({"labels": {"io.corral.stack": "x"}}, "labels.io.corral.stack"),
        ({"labels": {"k": 1}}, "labels.k"),
        ({"restart": "sometimes"}, "restart"),
        ({"host": 5}, "host"),
    ],
)
def test_each_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_run({**GOOD, **change}, default_name="x")
    assert caught.value.field == field


@given(container=st.integers(1, 65535), host=st.none() | st.integers(1, 65535), udp=st.booleans())
def test_property_ports_round_trip(container: int, host: int | None, udp: bool) -> None:
    text = (f"{host}:" if host is not None else "") + str(container) + ("/udp" if udp else "")
    assert parse_port(text) == PortSpec(container, host, "udp" if udp else "tcp")


def test_the_engine_name_of_a_standalone_container_is_its_own() -> None:
    standalone = ContainerSlot("c1", "e", STANDALONE_STACK, "web", 1, "h1", "x")
    assert standalone.name == "web"
    assert ContainerSlot("c2", "e", "shop", "web", 1, "h1", "x").name == "shop-web-1"
