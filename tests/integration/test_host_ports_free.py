"""Every host port is the user's (issue 17 item 9) on a real host: a service publishing 80:80 and one publishing
53 (TCP and UDP) run and answer from the root namespace on the host's address, while a managed container on the same
host still resolves names through the agent's DNS (169.254.169.250:53) and reads the metadata service
(169.254.169.250:80), which listen on Corral's own ports behind NAT. A service asking for a port Corral holds is
refused with a reason naming the holder."""

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from corral.model.network import METADATA_LISTEN_PORT
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration

COMPOSE = f"""\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo web-on-80 > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["80:80"]
  dns:
    image: corral/busybox:latest
    command: ["nc", "-ll", "-p", "53", "-e", "echo", "dns-on-53"]
    ports: ["53:53/tcp", "53:53/udp"]
  reader:
    image: corral/busybox:latest
    command: sleep 3600
  greedy:
    image: corral/busybox:latest
    command: sleep 3600
    ports: ["{METADATA_LISTEN_PORT}:80"]
"""


def _exec(server: ServerProcess, container: str, command: str) -> Any:
    return server.cli("exec", container, "--", "sh", "-c", command, check=False)


def _running(server: ServerProcess, service: str) -> list[dict[str, Any]]:
    return [c for c in _containers(server, "free") if c["service"] == service and c["state"] == "running"]


def _published(server: ServerProcess, service: str, port: str) -> str | None:
    """The host address `service`'s container publishes `port` (e.g. "80/tcp") on, once it runs."""
    for container in _running(server, service):
        for text in container.get("ports", []):
            found = re.fullmatch(rf"(\S+):\d+->{port}", text)
            if found:
                return found.group(1)
    return None


def _http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode().strip())
    except OSError:
        return None


def _tcp_line(address: str, port: int) -> str | None:
    try:
        with socket.create_connection((address, port), timeout=5) as connection:
            return connection.recv(64).decode().strip() or None
    except OSError:
        return None


def test_ports_80_and_53_are_the_users_while_dns_and_metadata_still_answer(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("hosts", "create", "--driver", "local", "free1")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    server.cli("up", "-d", "-f", str(compose), "-s", "free")

    address = wait_until("web publishes 80:80", lambda: _published(server, "web", "80/tcp"), 120)
    assert wait_until("80 answers from the root namespace", lambda: _http(f"http://{address}:80/"), 30) == "web-on-80"
    dns_address = wait_until("dns publishes 53/udp", lambda: _published(server, "dns", "53/udp"), 60)
    assert dns_address == address
    assert wait_until("53/tcp answers from the root namespace", lambda: _tcp_line(address, 53), 30) == "dns-on-53"

    wait_until(
        "the reader runs with an overlay address", lambda: [c for c in _running(server, "reader") if c["ip"]], 60
    )
    web_ip = _running(server, "web")[0]["ip"]

    def resolved() -> bool:
        found = _exec(server, "free-reader-1", "nslookup web")
        return web_ip in found.stdout.partition("Name:")[2]

    wait_until("the reader resolves web through the agent's DNS", resolved, 60)
    fetched = _exec(server, "free-reader-1", "timeout 5 wget -qO- http://169.254.169.250/latest/self/service/name")
    assert (fetched.returncode, fetched.stdout.strip()) == (0, "reader")
    by_name = _exec(server, "free-reader-1", "timeout 5 wget -qO- http://web/")
    assert by_name.stdout.strip() == "web-on-80"

    with server.client() as client:
        greedy = client.stacks.find_service("default", "free/greedy")
    held = f"port {METADATA_LISTEN_PORT}/tcp is held on every host ({METADATA_LISTEN_PORT}/tcp by Corral's metadata"
    assert held in greedy["reason"], greedy
