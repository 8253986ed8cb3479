"""The metadata service and published ports on a real host.

A managed container asks http://169.254.169.250/ (the agent's metadata service, reached through its gateway on
`corral0`) for its own service and stack names, in plain text and as JSON, and reads its service's `metadata:` from
rancher-compose.yml. A `ports: ["80"]` service gets a host port from CORRAL_HOST_PORT_RANGE that answers HTTP on
the host's address from the root namespace."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration

METADATA = "http://169.254.169.250"
PORT_RANGE = (52000, 52999)

COMPOSE = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo published-here > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["80"]
  reader:
    image: corral/busybox:latest
    command: sleep 3600
"""

RANCHER = """\
version: '2'
services:
  web:
    scale: 2
  reader:
    metadata:
      greeting: hello
      nested:
        answer: 42
        names: [ann, bob]
"""


def _exec(server: ServerProcess, container: str, command: str) -> Any:
    return server.cli("exec", container, "--", "sh", "-c", command, check=False)


def _fetch(server: ServerProcess, path: str, *, json_accept: bool = False) -> str | None:
    """GET `path` from the metadata service inside the reader container; None when it does not answer 200."""
    header = "Accept: application/json\\r\\n" if json_accept else ""
    request = f"printf 'GET {path} HTTP/1.0\\r\\n{header}\\r\\n' | timeout 5 nc 169.254.169.250 80"
    result = _exec(server, "meta-reader-1", request)
    if result.returncode != 0 or not result.stdout.startswith("HTTP/1.1 200"):
        return None
    return str(result.stdout.replace("\r\n", "\n").split("\n\n", 1)[1])  # the CLI's text mode may drop \r


def _wget(server: ServerProcess, path: str) -> str | None:
    result = _exec(server, "meta-reader-1", f"timeout 5 wget -qO- {METADATA}{path}")
    return str(result.stdout) if result.returncode == 0 else None


def _running(server: ServerProcess, service: str) -> list[dict[str, Any]]:
    return [c for c in _containers(server, "meta") if c["service"] == service and c["state"] == "running"]


def test_a_container_reads_its_service_and_stack_and_a_random_port_answers(
    server_with: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_with(CORRAL_HOST_PORT_RANGE=f"{PORT_RANGE[0]}-{PORT_RANGE[1]}")
    server.cli("hosts", "create", "--driver", "local", "meta1")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER)
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "meta")

    reader = wait_until(
        "reader running with an overlay address", lambda: [c for c in _running(server, "reader") if c["ip"]], 120
    )[0]

    # the acceptance: its own service name and stack, by plain wget
    assert wait_until("metadata answers the service name", lambda: _wget(server, "/latest/self/service/name"), 60) == (
        "reader"
    )
    assert _wget(server, "/latest/self/stack/name") == "meta"
    assert _wget(server, "/latest/self/container/primary_ip") == reader["ip"]
    assert _wget(server, "/latest/self/host/name") == "meta1"
    assert _wget(server, "/2015-07-25/self/container/name") == "meta-reader-1"

    # JSON with Accept: application/json
    body = _fetch(server, "/latest/self/container", json_accept=True)
    assert body is not None
    container = json.loads(body)
    assert (container["service_name"], container["stack_name"], container["name"]) == ("reader", "meta", reader["name"])

    # rancher-compose `metadata:` under the service, as a key walk and as values
    assert _wget(server, "/latest/self/service/metadata/greeting") == "hello"
    assert _wget(server, "/latest/self/service/metadata/nested/") == "answer\nnames/\n"
    assert _wget(server, "/latest/self/service/metadata/nested/answer") == "42"
    assert _wget(server, "/latest/self/service/metadata/nested/names/1") == "bob"
    assert json.loads(_fetch(server, "/latest/self/service/metadata", json_accept=True) or "null") == {
        "greeting": "hello",
        "nested": {"answer": 42, "names": ["ann", "bob"]},
    }
    # the environment: other services and their containers
    assert _wget(server, "/latest/services/web/containers") == "0=meta-web-1\n1=meta-web-2\n"
    assert _wget(server, "/latest/self/nothing") is None  # 404: wget fails

    # published on a random host port of the range, on the host's address, reachable from the root namespace
    def published() -> list[tuple[str, int]] | None:
        web = _running(server, "web")
        found = [re.fullmatch(r"(\S+):(\d+)->80/tcp", p) for c in web for p in c.get("ports", [])]
        if len(web) != 2 or len(found) != 2 or not all(found):
            return None
        return [(m.group(1), int(m.group(2))) for m in found if m is not None]

    endpoints = wait_until("web x2 running with published ports", published, 120)
    ports = {port for _, port in endpoints}
    assert len(ports) == 2, f"two containers on one host need two host ports: {endpoints}"
    for address, port in endpoints:
        assert PORT_RANGE[0] <= port <= PORT_RANGE[1]

        def answers(url: str = f"http://{address}:{port}/") -> str | None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return str(response.read().decode().strip())
            except OSError:
                return None

        assert wait_until(f"{address}:{port} answers", answers, 30) == "published-here"
