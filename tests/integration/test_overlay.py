"""The managed overlay on real netns hosts: containers on different hosts reach each other by overlay address; a
deleted fdb entry shows the pair broken (API and CLI) and is repaired by the agent; an agent restart breaks nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from corral.model.network import VXLAN_NAME, NetworkSettings, transit_address
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

    # break ov1's flooding entry towards ov2: the pair is broken (seen on both hosts), then repaired by the agent
    driver = server.driver()
    record_one, record_two = driver.load("ov1"), driver.load("ov2")
    assert record_one is not None and record_two is not None
    # the flooding entry points at ov2's VXLAN endpoint: its transit address inside WireGuard (encrypted default)
    settings = NetworkSettings.from_dict(server.client().get_environment("default")["network"])
    assert settings.encryption
    dst_two = transit_address(settings, hosts["ov2"]["overlay"]["slice"])
    dst_one = transit_address(settings, hosts["ov1"]["overlay"]["slice"])
    fdb = _in_netns(record_one, "bridge", "fdb", "show", "dev", VXLAN_NAME).stdout
    assert f"dst {dst_two}" in fdb
    # hold the repair off long enough to observe the break: a probe fails, the agent re-applies at once, so the
    # entry is deleted again while the check runs
    deleted = _in_netns(record_one, "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", VXLAN_NAME, "dst", dst_two)
    assert deleted.returncode == 0, deleted.stderr

    def broken_seen() -> bool:
        _in_netns(record_one, "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", VXLAN_NAME, "dst", dst_two)
        found = _hosts(server)
        return "ov2" in found["ov1"]["overlay"]["broken"] and "ov1" in found["ov2"]["overlay"]["broken"]

    wait_until("the pair shows broken on both hosts", broken_seen, timeout=60, interval=0.05)
    assert _network_cell(server, "ov1") == "broken: ov2"

    def repaired() -> bool:
        entries = _in_netns(record_one, "bridge", "fdb", "show", "dev", VXLAN_NAME).stdout
        return f"dst {dst_two}" in entries and all_ok()

    wait_until("the agent repairs the entry and the pair is ok again", repaired, timeout=60)
    assert wait_until("traffic again", lambda: _fetch(server, one["name"], two["ip"]), timeout=30)

    # a lost VXLAN device is put back too (level-triggered), enslaved to the bridge with its flooding entries
    assert _in_netns(record_two, "ip", "link", "del", VXLAN_NAME).returncode == 0

    def device_back() -> bool:
        link = _in_netns(record_two, "ip", "-d", "link", "show", VXLAN_NAME).stdout
        entries = _in_netns(record_two, "bridge", "fdb", "show", "dev", VXLAN_NAME).stdout
        return "master corral0" in link and "vxlan id" in link and f"dst {dst_one}" in entries

    wait_until("the agent recreates the VXLAN device", device_back, timeout=60)
    assert wait_until("traffic with the new device", lambda: _fetch(server, two["name"], one["ip"]), timeout=30)

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
