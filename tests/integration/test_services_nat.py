"""The DNS and metadata NAT in a real network namespace (network/services_nat.py): with the rules applied, the
services address answers on 53 (UDP and TCP) and 80 from listeners on Corral's own ports, while a user's listener
binds 0.0.0.0:80 and 0.0.0.0:53/udp in the same namespace; applying twice changes nothing; removing takes every
rule away. Only a netns of the test's own and iptables are needed (no dockerd)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PROBE = r"""
import socket, sys
from corral.model.network import DNS_LISTEN_PORT, METADATA_LISTEN_PORT, SERVICES_ADDRESS
from corral.network.services_nat import ServicesNat

nat = ServicesNat()
first, again = nat.apply(), nat.apply()
tcp = socket.create_server((SERVICES_ADDRESS, METADATA_LISTEN_PORT))
dns_tcp = socket.create_server((SERVICES_ADDRESS, DNS_LISTEN_PORT))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((SERVICES_ADDRESS, DNS_LISTEN_PORT))
user_tcp = socket.create_server(("0.0.0.0", 80))  # the user's published ports bind every address
user_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
user_udp.bind(("0.0.0.0", 53))

def via_tcp(port, server):
    client = socket.create_connection((SERVICES_ADDRESS, port), timeout=5)
    conn, _ = server.accept()
    conn.sendall(b"answer"); conn.close()
    data = client.recv(16); client.close()
    return data

client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(5)
client.sendto(b"query", (SERVICES_ADDRESS, 53))
data, asker = udp.recvfrom(64)
udp.sendto(b"reply", asker)
reply, source = client.recvfrom(64)
print(first, again, via_tcp(80, tcp) == b"answer", via_tcp(53, dns_tcp) == b"answer", data == b"query",
      reply == b"reply", source == (SERVICES_ADDRESS, 53))
nat.remove()
sys.stdout.flush()
"""


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, iptables)")
    name = f"corral-nat-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "link", "add", "corral0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "corral0", "up"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "169.254.169.250/32", "dev", "corral0"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _in(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["nsenter", f"--net=/var/run/netns/{netns}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_ports_53_and_80_reach_the_services_and_stay_free_for_the_user(netns: str) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = _in(netns, "env", f"PYTHONPATH={src}", sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True", "True", "True", "True", "True"]
    left = _in(netns, "iptables", "-t", "nat", "-S")
    assert "CORRAL-SERVICES" not in left.stdout
