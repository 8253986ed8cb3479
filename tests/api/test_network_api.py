"""Environment network settings, host slices and the `network` message through the in-process API."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.model import protocol
from corral.model.network import NetworkState
from tests.api.conftest import basic
from tests.api.test_api import register


def test_environment_network_settings_are_stored_and_shown(api: TestClient) -> None:
    body = {"name": "edge", "network": {"subnet": "10.50.0.0/16", "host_prefix": 20, "mtu": 1400}}
    created = api.post("/v1/environments", json=body)
    assert created.status_code == 201, created.text
    vni = created.json()["network"]["vni"]
    assert 1 <= vni < 2**24 and vni != 4242  # random per environment
    expected = {"subnet": "10.50.0.0/16", "host_prefix": 20, "mtu": 1400, "vni": vni, "encryption": True}
    assert created.json()["network"] == expected
    assert api.get("/v1/environments/edge").json()["network"] == expected
    listed = {e["name"]: e["network"] for e in api.get("/v1/environments").json()["data"]}
    assert listed["edge"] == expected


def test_without_settings_an_environment_gets_the_default_subnet(api: TestClient, settings) -> None:
    assert api.get("/v1/environments/default").json()["network"]["subnet"] == settings.default_subnet
    plain = api.post("/v1/environments", json={"name": "plain", "network": {"encryption": False}}).json()
    vni = plain["network"]["vni"]
    assert plain["network"] == {
        "subnet": settings.default_subnet,
        "host_prefix": 24,
        "mtu": 1450,
        "vni": vni,
        "encryption": False,
    }
    again = api.post("/v1/environments", json={"name": "twin"}).json()  # two environments may share a subnet
    assert again["network"]["subnet"] == settings.default_subnet
    assert (again["network"]["mtu"], again["network"]["encryption"]) == (1420, True)
    assert again["network"]["vni"] != vni  # each environment its own VNI
    default = api.get("/v1/environments/default").json()["network"]
    assert default["encryption"] is True and default["vni"] != 4242


@pytest.mark.parametrize(
    ("network", "field", "words"),
    [
        ({"subnet": "10.42.0.1/16"}, "network.subnet", "not an IPv4 network"),
        ({"subnet": "fd00::/64"}, "network.subnet", "not an IPv4 network"),
        ({"subnet": 10}, "network.subnet", "must be a str"),
        ({"subnet": "10.42.0.0/24"}, "network.host_prefix", "longer than the subnet"),
        ({"host_prefix": 30}, "network.host_prefix", "at most /29"),
        ({"host_prefix": "24"}, "network.host_prefix", "must be a int"),
        ({"mtu": 100}, "network.mtu", "576..9000"),
        ({"mtu": True}, "network.mtu", "must be a int"),
        ({"vni": 0}, "network.vni", "1..16777215"),
        ({"colour": "red"}, "network.colour", "not a network setting"),
    ],
)
def test_bad_network_settings_are_422_naming_the_field(api: TestClient, network: Any, field: str, words: str) -> None:
    response = api.post("/v1/environments", json={"name": "bad", "network": network})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["message"]
    assert api.get("/v1/environments/bad").status_code == 404


def test_network_must_be_an_object(api: TestClient) -> None:
    response = api.post("/v1/environments", json={"name": "bad", "network": ["10.0.0.0/8"]})
    assert response.status_code == 422 and response.json()["field"].startswith("network")


def _wait_for(what: str, check, timeout: float = 10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_hosts_get_distinct_stable_slices_shown_in_their_view(api: TestClient, settings) -> None:
    hosts = [register(api, name)["host_id"] for name in ("h1", "h2", "h3")]

    def sliced() -> list[dict[str, Any]] | None:
        views = [api.get(f"/v1/hosts/{h}").json() for h in hosts]
        return views if all(v["overlay"]["slice"] for v in views) else None

    views = _wait_for("every host's slice", sliced)
    slices = {v["id"]: v["overlay"]["slice"] for v in views}
    subnet = ipaddress.IPv4Network(settings.default_subnet)
    assert len(set(slices.values())) == 3
    for view in views:
        network = ipaddress.IPv4Network(view["overlay"]["slice"])
        assert network.subnet_of(subnet) and network.prefixlen == 24
        assert view["overlay"]["gateway"] == str(network.network_address + 1)
    # the middle host goes: the others keep theirs, and a new host takes the freed slice
    assert api.delete(f"/v1/hosts/{hosts[1]}").status_code == 204
    newcomer = register(api, "h4")["host_id"]
    _wait_for("the newcomer's slice", lambda: api.get(f"/v1/hosts/{newcomer}").json()["overlay"]["slice"])
    assert api.get(f"/v1/hosts/{newcomer}").json()["overlay"]["slice"] == slices[hosts[1]]
    for host_id in (hosts[0], hosts[2]):
        assert api.get(f"/v1/hosts/{host_id}").json()["overlay"]["slice"] == slices[host_id]


def test_an_agent_gets_its_network_state_on_connect(api: TestClient) -> None:
    first = register(api, "n1")
    second = register(api, "n2")
    _wait_for(
        "slices", lambda: all(api.get(f"/v1/hosts/{c['host_id']}").json()["overlay"]["slice"] for c in (first, second))
    )
    with api.websocket_connect("/v1/agent", headers=basic(first["access_key"], first["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64"}}).encode())
        state = None
        for _ in range(5):
            message = protocol.decode(ws.receive_text())
            if message.type == protocol.NETWORK:
                state = NetworkState.from_dict(message.data)
                break
        assert state is not None
        own = api.get(f"/v1/hosts/{first['host_id']}").json()
        assert state.environment == "default"
        assert (state.host.host_id, state.host.slice, state.host.gateway) == (
            own["id"],
            own["overlay"]["slice"],
            own["overlay"]["gateway"],
        )
        other = api.get(f"/v1/hosts/{second['host_id']}").json()  # registered, never connected: still a peer
        assert [(p.host_id, p.slice, p.address) for p in state.peers] == [
            (other["id"], other["overlay"]["slice"], other["address"])
        ]
        assert state.peers[0].slice != state.host.slice
        assert {h["name"] for h in state.hosts} == {"n1", "n2"}
