"""Overlay IPAM on real netns hosts: host slices (distinct, kept across an agent restart), container addresses from
their host's slice, requested_ip honoured, and retain_ip keeping an address when evacuation moves its container."""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _write

pytestmark = pytest.mark.integration

OVERLAY = ipaddress.IPv4Network("198.18.64.0/18")  # CORRAL_DEFAULT_SUBNET of test servers (servers.py)
REQUESTED = "198.18.70.77"

COMPOSE = (
    "version: '2'\nservices:\n"
    # as PID 1, sleep ignores SIGTERM: evacuation would wait Docker's 10 s per stop
    "  web:\n    image: corral/busybox:latest\n    command: sleep 3600\n    stop_grace_period: 1s\n"
    "  fixed:\n    image: corral/busybox:latest\n    command: sleep 3600\n    stop_grace_period: 1s\n    labels:\n"
    f"      io.rancher.container.requested_ip: 198.18.64.1,{REQUESTED}\n"
)
RANCHER = "version: '2'\nservices:\n  web:\n    scale: 2\n    retain_ip: true\n"


def _hosts(server: ServerProcess) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        return {h["name"]: h for h in client.list_hosts("default")}


def _sliced(server: ServerProcess, *names: str) -> dict[str, dict[str, Any]] | None:
    hosts = _hosts(server)
    return hosts if all(hosts[n]["overlay"]["slice"] for n in names) else None


def _placed(server: ServerProcess) -> dict[str, dict[str, Any]] | None:
    """name -> container view, once all three run and have their overlay address."""
    containers = {c["name"]: c for c in _containers(server, "net")}
    ready = len(containers) == 3 and all(c["state"] == "running" and c["overlay_ip"] for c in containers.values())
    return containers if ready else None


def test_slices_and_addresses_on_two_hosts(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "o1", "o2")
    hosts = wait_until("both hosts' slices", lambda: _sliced(server, "o1", "o2"), timeout=30)
    slices = {name: ipaddress.IPv4Network(hosts[name]["overlay"]["slice"]) for name in ("o1", "o2")}
    assert slices["o1"] != slices["o2"]
    for name, network in slices.items():
        assert network.subnet_of(OVERLAY) and network.prefixlen == 24
        assert hosts[name]["overlay"]["gateway"] == str(network.network_address + 1)

    # an agent restart changes nothing about its slice
    record = server.driver().load("o1")
    assert record is not None
    os.kill(record.agent_pid, signal.SIGKILL)
    wait_until("o1 reconnecting", lambda: _hosts(server)["o1"]["state"] != "active", timeout=15, interval=0.1)
    wait_until("o1 active again", lambda: _hosts(server)["o1"]["state"] == "active", timeout=30)
    assert {n: _hosts(server)[n]["overlay"]["slice"] for n in slices} == {n: str(s) for n, s in slices.items()}

    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER)
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "net")
    containers = wait_until("three containers with addresses", lambda: _placed(server), timeout=90)
    addresses = [c["overlay_ip"] for c in containers.values()]
    wait_until(  # the agents create the containers on the overlay with these addresses (agent side: network/)
        "containers on the overlay with their addresses",
        lambda: all(c["ip"] == c["overlay_ip"] for c in _containers(server, "net")),
        timeout=30,
    )
    assert len(set(addresses)) == 3
    # 198.18.64.1 is a gateway: refused; the next candidate is free and honoured
    assert containers["net-fixed-1"]["overlay_ip"] == REQUESTED
    for name in ("net-web-1", "net-web-2"):
        container = containers[name]
        network = slices[container["host"]]
        assert ipaddress.IPv4Address(container["overlay_ip"]) in network
        assert container["overlay_ip"] != str(network.network_address + 1)  # never the gateway

    # evacuation replaces web's container on the host (a new slot elsewhere): retain_ip keeps its address
    moving = containers["net-web-1"]
    gone, other = moving["host"], ({"o1", "o2"} - {moving["host"]}).pop()
    staying_fixed = containers["net-fixed-1"]
    server.cli("hosts", "evacuate", gone)

    def moved() -> dict[str, dict[str, Any]] | None:
        now = _placed(server)
        return now if now is not None and all(c["host"] == other for c in now.values()) else None

    after = wait_until(f"every container moved to {other}", moved, timeout=90)
    assert after[moving["name"]]["id"] != moving["id"]  # a new container slot ...
    assert after[moving["name"]]["overlay_ip"] == moving["overlay_ip"]  # ... with the same address
    assert after["net-fixed-1"]["overlay_ip"] == REQUESTED  # the requested address follows too (it was freed)
    if staying_fixed["host"] == other:
        assert after["net-fixed-1"]["id"] == staying_fixed["id"]
    assert len({c["overlay_ip"] for c in after.values()}) == 3
