"""The managed overlay on real netns hosts: containers on different hosts reach each other by overlay address; a
deleted route to a peer's slice shows the pair broken (API and CLI) and is repaired by the agent, as is a deleted
WireGuard interface; an agent restart breaks nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corral.model.network import VXLAN_NAME, NetworkSettings, wireguard_interface
from corral.provision.local import LocalHostRecord
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _write

pytestmark = pytest.mark.integration

COMPOSE = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    labels:
      io.rancher.scheduler.global: 'true'
"""


def _in_netns(record: LocalHostRecord, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{record.netns}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _hosts(server: ServerProcess) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in server.client().list_hosts(None)}


def _web(server: ServerProcess, count: int) -> dict[str, dict[str, Any]] | None:
    """host name -> its running web container (with an overlay address), once there are `count`."""
    running = [c for c in _containers(server, "ov") if c["state"] == "running" and c.get("ip")]
    by_host = {c["host"]: c for c in running}
    return by_host if len(by_host) == count else None


def _fetch(server: ServerProcess, container: str, ip: str) -> str:
    result = server.cli("exec", container, "--", "timeout", "5", "wget", "-qO-", f"http://{ip}/", check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def _network_cell(server: ServerProcess, name: str) -> str:
    lines = server.cli("hosts", "ls").stdout.splitlines()
    header = lines[0]
    start = header.index("NETWORK")
    end = header.index("LABELS")
    row = next(line for line in lines[1:] if line.split()[0] == name)
    return row[start:end].strip()


def test_containers_reach_each_other_over_the_overlay_and_a_broken_pair_is_seen_and_repaired(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "ov1", "ov2")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    server.cli("up", "-d", "-f", str(compose), "-s", "ov")
    webs: dict[str, dict[str, Any]] = wait_until("a web container on each host", lambda: _web(server, 2), timeout=120)
    one, two = webs["ov1"], webs["ov2"]
    assert one["ip"] != two["ip"]
    hosts = _hosts(server)
    for name, web in webs.items():  # each address from its own host's slice
        assert web["ip"].rsplit(".", 1)[0] == hosts[name]["overlay"]["slice"].rsplit(".", 1)[0]

    # across hosts, both ways, by overlay address
    assert wait_until("ov1 -> ov2 over the overlay", lambda: _fetch(server, one["name"], two["ip"]), timeout=30)
    assert wait_until("ov2 -> ov1 over the overlay", lambda: _fetch(server, two["name"], one["ip"]), timeout=30)

    # the connectivity check reports the pair ok from both sides
    def all_ok() -> bool:
        found = _hosts(server)
        overlays = [h["overlay"] for h in found.values()]
        return all(o.get("reported") and not o["broken"] and o["peers"] for o in overlays)

    wait_until("both hosts report the overlay ok", all_ok, timeout=60)
    assert _network_cell(server, "ov1") == "ok"

    # break ov1's route towards ov2's slice: the pair is broken (seen on both hosts), then repaired by the agent
    driver = server.driver()
    record_one, record_two = driver.load("ov1"), driver.load("ov2")
    assert record_one is not None and record_two is not None
    # encrypted (the default): each peer's slice is routed into the host's WireGuard interface, no VXLAN inside
    settings = NetworkSettings.from_dict(server.client().get_environment("default")["network"])
    assert settings.encryption
    slice_two = hosts["ov2"]["overlay"]["slice"]
    wg_one, wg_two = wireguard_interface(hosts["ov1"]["id"]), wireguard_interface(hosts["ov2"]["id"])
    assert f"{slice_two} dev {wg_one}" in _in_netns(record_one, "ip", "route").stdout
    assert VXLAN_NAME not in _in_netns(record_one, "ip", "link").stdout
    # hold the repair off long enough to observe the break: a probe fails, the agent re-applies at once, so the
    # route is deleted again while the check runs
    deleted = _in_netns(record_one, "ip", "route", "del", slice_two, "dev", wg_one)
    assert deleted.returncode == 0, deleted.stderr

    def broken_seen() -> bool:
        _in_netns(record_one, "ip", "route", "del", slice_two, "dev", wg_one)
        found = _hosts(server)
        return "ov2" in found["ov1"]["overlay"]["broken"] and "ov1" in found["ov2"]["overlay"]["broken"]

    wait_until("the pair shows broken on both hosts", broken_seen, timeout=60, interval=0.05)
    assert _network_cell(server, "ov1") == "broken: ov2"

    def repaired() -> bool:
        routes = _in_netns(record_one, "ip", "route").stdout
        return f"{slice_two} dev {wg_one}" in routes and all_ok()

    wait_until("the agent repairs the route and the pair is ok again", repaired, timeout=60)
    assert wait_until("traffic again", lambda: _fetch(server, one["name"], two["ip"]), timeout=30)

    # a lost WireGuard interface is put back too (level-triggered), with its peers and routes
    assert _in_netns(record_two, "ip", "link", "del", wg_two).returncode == 0
    slice_one = hosts["ov1"]["overlay"]["slice"]

    def device_back() -> bool:
        return f"{slice_one} dev {wg_two}" in _in_netns(record_two, "ip", "route").stdout

    wait_until("the agent recreates the WireGuard interface", device_back, timeout=60)
    assert wait_until("traffic with the new interface", lambda: _fetch(server, two["name"], one["ip"]), timeout=30)

    # restarting ov1's agent (the server's supervisor brings it back) breaks nothing for long
    assert record_one.agent_pid is not None
    os.kill(record_one.agent_pid, signal.SIGKILL)

    def revived() -> bool:
        again = driver.load("ov1")
        return again is not None and again.agent_pid not in (None, record_one.agent_pid)

    wait_until("the agent of ov1 is restarted", revived, timeout=60)
    wait_until("the overlay is ok after the restart", all_ok, timeout=60)
    assert wait_until("traffic after the restart", lambda: _fetch(server, two["name"], one["ip"]), timeout=30)
    after = _web(server, 2)
    assert after is not None and after["ov1"]["docker_id"] == one["docker_id"]  # not recreated by the restart
