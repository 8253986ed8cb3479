"""Volumes and internal networks on real netns hosts (issue 17 items 4 and 5), one server and two hosts for the
module: `corral volume ls` shows a stack's volume on the host that holds it, removing it while a container mounts
it is refused, the volume keeps a rescheduled container on its host, and a container on an `internal: true`
network reaches its network's containers but not the root namespace's address, which a container on an ordinary
network reaches."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _wait_running, _write

pytestmark = pytest.mark.integration

HOSTS = ("vol1", "vol2")
STACK_VOLUME = """\
services:
  app:
    image: corral/busybox:latest
    command: ["sh", "-c", "echo kept > /data/mark; exec sleep 3600"]
    stop_grace_period: 1s  # as PID 1, sleep ignores SIGTERM: `scale vol/app=0` would wait 10 s for Docker's kill
    volumes: [data:/data]
volumes:
  data: {}
"""
HTTPD = '["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]'
NETWORKS = f"""\
services:
  inner:
    image: corral/busybox:latest
    command: {HTTPD}
    scale: 2
    networks: [back]
  outer:
    image: corral/busybox:latest
    command: {HTTPD}
    networks: [front]
networks:
  back: {{internal: true}}
  front: {{}}
"""


@pytest.fixture(scope="module")
def hosts(module_server: ServerProcess) -> Iterator[ServerProcess]:
    _create_hosts(module_server, *HOSTS)
    yield module_server


def _volumes(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    return json.loads(server.cli("volume", "ls", "--format", "json", *args).stdout)


def test_volume_ls_rm_and_the_affinity_that_keeps_a_container_on_its_data(hosts: ServerProcess, tmp_path: Path) -> None:
    server = hosts
    compose = _write(tmp_path, "compose.yaml", STACK_VOLUME)
    server.cli("up", "-d", "-f", str(compose), "-s", "vol")
    (app,) = _wait_running(server, "vol", "app", 1)
    holder = app["host"]

    def listed() -> dict[str, Any] | None:
        found = [v for v in _volumes(server, "--stack", "vol") if v["name"] == "vol_data"]
        return found[0] if found and found[0]["state"] == "active" else None

    volume = wait_until("vol_data listed as active", listed, 30)
    assert [h["name"] for h in volume["hosts"]] == [holder]
    assert (volume["scope"], volume["stack"], volume["containers"]) == ("stack", "vol", [app["name"]])
    table = server.cli("volume", "ls").stdout
    assert "vol_data" in table and holder in table

    refused = server.cli("volume", "rm", "vol_data", check=False)
    assert refused.returncode != 0
    assert f"in use by {app['name']}" in refused.stderr + refused.stdout
    assert _volumes(server, "--stack", "vol")[0]["state"] == "active"

    # rescheduled: the container goes, and its data's host takes no new containers for a while
    server.cli("scale", "vol/app=0")
    server.cli("hosts", "deactivate", holder)
    server.cli("scale", "-d", "vol/app=1")

    def held_back() -> str | None:
        with server.client() as client:
            service = client.stacks.find_service("default", "vol/app")
        reasons = [u["reason"] for u in service.get("unplaced", [])]
        return next((r for r in reasons if "keeps it on" in r), None)

    reason = wait_until("the container to wait for its volume's host", held_back, 30)
    assert f"its volume vol_data keeps it on {holder}, where the data is" in reason, reason
    assert all(c["state"] != "running" for c in _containers(server, "vol"))  # not on the other host
    server.cli("hosts", "activate", holder)
    (again,) = _wait_running(server, "vol", "app", 1)
    assert again["host"] == holder
    server.cli("rm", "vol")


def test_an_internal_network_has_no_way_out_of_the_overlay(hosts: ServerProcess, tmp_path: Path) -> None:
    server = hosts
    gateway = str(next(ipaddress.ip_network(server.env["CORRAL_LOCAL_SUBNET"]).hosts()))  # the root namespace
    compose = _write(tmp_path, "compose.yaml", NETWORKS)
    up = server.cli("up", "-d", "-f", str(compose), "-s", "net")
    assert "internal" not in up.stdout + up.stderr  # enforced: no warning
    inner = _wait_running(server, "net", "inner", 2)
    (outer,) = _wait_running(server, "net", "outer", 1)
    wait_until("addresses", lambda: all(c.get("ip") for c in _containers(server, "net")), 30)
    inner = [c for c in _containers(server, "net") if c["service"] == "inner"]

    def ping(container: str, address: str) -> bool:
        cmd = ("exec", container, "--", "ping", "-c", "1", "-W", "2", address)
        return server.cli(*cmd, check=False).returncode == 0

    assert wait_until("the ordinary network to reach the root namespace", lambda: ping(outer["name"], gateway), 30)
    for container in inner:
        assert not ping(container["name"], gateway), f"{container['name']} reached {gateway}"
    first, second = inner
    fetched = server.cli("exec", first["name"], "--", "timeout", "3", "wget", "-qO-", f"http://{second['ip']}/")
    assert fetched.stdout.strip()  # the internal network's containers reach each other
    server.cli("rm", "net")
