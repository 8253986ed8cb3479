"""The encrypted overlay on real netns hosts (issue 13 part 3): containers on two hosts talk by HTTP and by DNS
name; tcpdump on the bridge between the hosts sees only WireGuard (no VXLAN, no payload in clear); a VXLAN frame
with the environment's VNI from a non-peer is dropped before it reaches `corral0`; and an environment created with
`--overlay-encryption off` keeps the plain VXLAN overlay, filtered to its peers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.model.network import VXLAN_NAME, VXLAN_PORT, WIREGUARD_PORT, NetworkSettings, wireguard_interface
from corral.network.firewall import CHAIN
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_overlay import _in_netns
from tests.integration.test_stacks import _write

pytestmark = pytest.mark.integration

MARKER = "corral-secret-marker-7f3a9c"
COMPOSE = f"""\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo {MARKER} > /www/index.html && exec httpd -f -p 80 -h /www"]
    labels:
      io.rancher.scheduler.global: 'true'
"""


def _webs(server: ServerProcess, stack: str, count: int, env: str = "default") -> dict[str, dict[str, Any]] | None:
    listed = json.loads(server.cli("ps", "-a", "--format", "json", "--env", env, stack).stdout)
    running = [c for c in listed if c["state"] == "running" and c.get("ip")]
    by_host = {c["host"]: c for c in running}
    return by_host if len(by_host) == count else None


def _fetch(server: ServerProcess, container: str, target: str, env: str = "default") -> str:
    command = ["exec", "--env", env, container, "--", "timeout", "5", "wget", "-qO-", f"http://{target}/"]
    result = server.cli(*command, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


@contextlib.contextmanager
def _tcpdump(path: Path, interface: str, bpf: str, netns: str | None = None) -> Iterator[None]:
    """Capture on `interface` (in `netns`, else the root namespace) into `path`; ended by its PID."""
    prefix = ["nsenter", f"--net=/var/run/netns/{netns}"] if netns else []
    proc = subprocess.Popen(
        [*prefix, "tcpdump", "-i", interface, "-U", "-n", "-s", "0", "-w", str(path), bpf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(f"tcpdump on {interface}", lambda: path.exists() and path.stat().st_size > 0, timeout=10)
        yield
    finally:
        time.sleep(0.5)  # the last packets reach the file (-U)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _udp_packets(path: Path) -> list[tuple[int, int, bytes]]:
    """(source port, destination port, payload) of each IPv4 UDP packet in an Ethernet pcap file."""
    data = path.read_bytes()
    packets, offset = [], 24
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", frame, 14 + ihl)
        packets.append((sport, dport, frame[14 + ihl + 8 :]))
    return packets


def _drops(record_netns: str, port: int) -> int:
    shown = subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{record_netns}", "iptables", "-w", "5", "-L", CHAIN, "-v", "-n", "-x"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(
        line for line in shown.splitlines() if "DROP" in line and f"dpt:{port}" in line and "0.0.0.0/0 " in line
    )
    return int(line.split()[0])


def _vxlan_frame(vni: int, payload: bytes) -> bytes:
    """A VXLAN packet carrying a broadcast Ethernet frame with `payload`."""
    inner = b"\xff" * 6 + b"\x02\x00\x00\xc0\xff\xee" + b"\x08\x00" + payload
    return struct.pack("!B3xI", 0x08, vni << 8) + inner


def test_encrypted_overlay_carries_http_and_dns_inside_wireguard_and_drops_injected_frames(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli_all(("hosts", "create", "--driver", "local", "wg1"), ("hosts", "create", "--driver", "local", "wg2"))
    env = server.client().get_environment("default")
    settings = NetworkSettings.from_dict(env["network"])
    assert settings.encryption and settings.vni != 4242
    server.cli("up", "-d", "-f", str(_write(tmp_path, "docker-compose.yml", COMPOSE)), "-s", "sec")
    webs: dict[str, dict[str, Any]] = wait_until("a web on each host", lambda: _webs(server, "sec", 2), timeout=120)
    one, two = webs["wg1"], webs["wg2"]
    driver = server.driver()
    record_one, record_two = driver.load("wg1"), driver.load("wg2")
    assert record_one is not None and record_two is not None
    hosts = {h["name"]: h for h in server.client().list_hosts(None)}
    assert (
        hosts["wg1"]["overlay"]["public_key"]
        and hosts["wg1"]["overlay"]["public_key"] != hosts["wg2"]["overlay"]["public_key"]
    )
    link = _in_netns(record_two, "ip", "link", "show", wireguard_interface(hosts["wg2"]["id"])).stdout
    assert "UP" in link

    bridge = server.env["CORRAL_LOCAL_BRIDGE"]
    between = f"udp and host {record_one.address} and host {record_two.address}"
    wire, inside = tmp_path / "wire.pcap", tmp_path / "corral0.pcap"
    with _tcpdump(wire, bridge, between), _tcpdump(inside, "corral0", "", netns=record_two.netns):
        # HTTP by address and by DNS name (the container's name), both ways across the hosts
        assert MARKER in wait_until("wg1 -> wg2 by address", lambda: _fetch(server, one["name"], two["ip"]), timeout=60)
        assert MARKER in wait_until("wg2 -> wg1 by name", lambda: _fetch(server, two["name"], one["name"]), timeout=30)
        assert MARKER in wait_until("wg1 -> wg2 by name", lambda: _fetch(server, one["name"], two["name"]), timeout=30)

        # a non-peer (the bridge's own address) sends a VXLAN frame with the environment's VNI to wg2
        before = _drops(record_two.netns, VXLAN_PORT)
        injected = b"corral-injected-frame-5d1e"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(5):
                sender.sendto(_vxlan_frame(settings.vni, injected), (record_two.address, VXLAN_PORT))
        wait_until("the filter drops them", lambda: _drops(record_two.netns, VXLAN_PORT) >= before + 5, timeout=10)

    packets = _udp_packets(wire)
    assert packets, "nothing captured between the hosts"
    assert all(WIREGUARD_PORT in (sport, dport) for sport, dport, _ in packets), "non-WireGuard UDP between hosts"
    assert not [p for p in packets if VXLAN_PORT in p[:2]], "VXLAN in clear between the hosts"
    assert {payload[0] for _, _, payload in packets} <= {1, 2, 3, 4}  # WireGuard message types
    assert sum(1 for *_, payload in packets if payload[0] == 4) >= 4  # transport data, both ways
    assert MARKER.encode() not in wire.read_bytes()
    seen_inside = inside.read_bytes()
    assert MARKER.encode() in seen_inside  # decrypted on wg2's bridge: the capture there works
    assert injected not in seen_inside  # ... and the injected frame never got there


PLAIN = COMPOSE.replace(MARKER, "plain-overlay")


def test_overlay_encryption_off_keeps_plain_vxlan_filtered_to_peers(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("env", "create", "trusted", "--overlay-encryption", "off")
    env = server.client().get_environment("trusted")
    assert env["network"]["encryption"] is False and env["network"]["mtu"] == 1450
    for name in ("pl1", "pl2"):
        server.cli("hosts", "create", "--driver", "local", "--env", "trusted", name)
    server.cli("up", "-d", "--env", "trusted", "-f", str(_write(tmp_path, "docker-compose.yml", PLAIN)), "-s", "pl")
    webs: dict[str, dict[str, Any]] = wait_until(
        "a web on each host", lambda: _webs(server, "pl", 2, "trusted"), timeout=120
    )
    assert "plain-overlay" in wait_until(
        "pl1 -> pl2", lambda: _fetch(server, webs["pl1"]["name"], webs["pl2"]["ip"], "trusted"), timeout=60
    )
    driver = server.driver()
    record_one, record_two = driver.load("pl1"), driver.load("pl2")
    assert record_one is not None and record_two is not None
    assert f"dst {record_two.address}" in _in_netns(record_one, "bridge", "fdb", "show", "dev", VXLAN_NAME).stdout
    assert "wireguard" not in _in_netns(record_one, "ip", "-d", "link").stdout.lower()
    rules = _in_netns(record_one, "iptables", "-w", "5", "-S", CHAIN).stdout
    assert f"-A {CHAIN} -s {record_two.address}/32 -p udp -m udp --dport {VXLAN_PORT} -j RETURN" in rules
    assert rules.strip().endswith(f"--dport {VXLAN_PORT} -j DROP")
