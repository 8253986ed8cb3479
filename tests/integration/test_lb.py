"""Load balancer services on a real host with real HAProxy (issue 19): an LB publishing 80 routes `a.example` to
service a and `b.example/api` to service b (HTTP from the root namespace with Host headers, to the host's published
port), passes TCP through on another port, follows a scale of its target (new containers receive traffic, removed
ones leave), and never sends to a container whose health check fails."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import LB_SETTINGS, ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration
SERVER_SETTINGS = LB_SETTINGS  # HAProxy's image into this module's hosts (conftest.py)

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["80:80", "7000:7000"]
  a:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
  b:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www/api && echo b-api > /www/api/index.html && exec httpd -f -p 8080 -h /www"]
  c:
    image: corral/busybox:latest
    command: ["nc", "-ll", "-p", "7000", "-e", "echo", "tcp-through"]
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      port_rules:
      - {source_port: 80, target_port: 8080, service: a, hostname: a.example}
      - {source_port: 80, target_port: 8080, service: b, hostname: b.example, path: /api}
      - {source_port: 7000, target_port: 7000, service: c, protocol: tcp}
  a:
    scale: 2
    health_check:
      port: 8080
      request_line: GET /index.html HTTP/1.0
      interval: 500
      response_timeout: 1000
      healthy_threshold: 2
      unhealthy_threshold: 2
      initializing_timeout: 10000
      strategy: none
"""


def _get(address: str, host: str, path: str = "/") -> tuple[int, str] | None:
    try:
        connection = http.client.HTTPConnection(address, 80, timeout=5)
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    except OSError:
        return None


def _running(server: ServerProcess, service: str) -> list[dict[str, Any]]:
    return [c for c in _containers(server, "web") if c["service"] == service and c["state"] == "running"]


def _tcp(address: str, port: int) -> str | None:
    try:
        with socket.create_connection((address, port), timeout=5) as connection:
            return connection.recv(64).decode().strip() or None
    except OSError:
        return None


def test_hostname_and_path_routing_tcp_scale_and_health(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "lb1")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER)
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "web")
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "lb1")

    def a_hostnames() -> set[str] | None:
        """The a containers that answered 10 requests, None unless every request got a 200."""
        answers = [_get(address, "a.example") for _ in range(10)]
        if not all(answer is not None and answer[0] == 200 for answer in answers):
            return None
        return {answer[1] for answer in answers if answer is not None}

    wait_until("a.example answers through the LB", a_hostnames, 180)
    wait_until("both a containers receive traffic", lambda: len(a_hostnames() or ()) == 2, 60)
    assert wait_until("b.example/api answers", lambda: _get(address, "b.example", "/api/"), 30) == (200, "b-api")
    unrouted = [_get(address, "b.example", "/"), _get(address, "nobody.example")]
    assert [answer[0] if answer else None for answer in unrouted] == [503, 503]  # no rule matches: HAProxy's 503
    assert wait_until("TCP passes through on 7000", lambda: _tcp(address, 7000), 30) == "tcp-through"

    # scale a to 3: the new container receives traffic once healthy
    server.cli("scale", "web/a=3")
    wait_until("three a containers receive traffic", lambda: len(a_hostnames() or ()) == 3, 120)

    # a container whose check fails leaves the LB (it keeps running: strategy none)
    before = a_hostnames() or set()
    assert server.cli("exec", "web-a-3", "--", "rm", "/www/index.html", check=False).returncode == 0
    after = wait_until("only the two healthy a containers answer, every time", lambda: a_hostnames(), 60)
    assert len(after) == 2 and after < before
