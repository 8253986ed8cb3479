"""External services and aliases on a real netns host (issue 19 item 4): an external service by IP and one by
hostname resolve from a container (A records; a CNAME followed by the target's address) and work as LB targets;
an alias resolves to the linked services' containers and is an LB target too. No container runs for any of them."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration

WEB = """\
version: '2'
services:
  a:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo from-a > /www/index.html && exec httpd -f -p 8080 -h /www"]
  b:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo from-b > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

EDGE = """\
version: '2'
services:
  by-ip:
    image: rancher/external-service
  by-name:
    image: rancher/external-service
  both:
    image: rancher/dns-service
    external_links: [web/a, web/b]
  client:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
    links: [by-ip, by-name, both]
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["80:80"]
"""

EDGE_RANCHER = """\
version: '2'
services:
  by-ip:
    external_ips: ["{a_ip}"]
  by-name:
    hostname: b.web.corral.internal
  lb:
    lb_config:
      port_rules:
      - {{source_port: 80, target_port: 8080, service: by-ip, hostname: ip.example}}
      - {{source_port: 80, target_port: 8080, service: by-name, hostname: name.example}}
      - {{source_port: 80, target_port: 8080, service: both, hostname: alias.example}}
"""


def _get(address: str, host: str) -> str | None:
    try:
        connection = http.client.HTTPConnection(address, 80, timeout=5)
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        return response.read().decode().strip() if response.status == 200 else None
    except OSError:
        return None


def _lookup(server: ServerProcess, name: str) -> str:
    """busybox nslookup's answers ("" when none): it also asks the search list's names and AAAA records, whose
    NXDOMAIN make its exit status useless here."""
    result = server.cli("exec", "edge-client-1", "--", "nslookup", name, check=False)
    return result.stdout if "Name:" in result.stdout else ""


def test_external_services_and_an_alias_resolve_and_serve_through_an_lb(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "ext1")
    server.cli("up", "-d", "-f", str(_write(tmp_path, "docker-compose.yml", WEB)), "-s", "web")

    def ips() -> dict[str, str] | None:
        found = {c["service"]: c.get("ip") for c in _containers(server, "web") if c["state"] == "running"}
        return found if found.get("a") and found.get("b") else None

    web_ips = wait_until("web's a and b run with addresses", ips, 120)
    edge = tmp_path / "edge"
    edge.mkdir()
    compose = _write(edge, "docker-compose.yml", EDGE)
    rancher = _write(edge, "rancher-compose.yml", EDGE_RANCHER.format(a_ip=web_ips["a"]))
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "edge")
    edge_services = {c["service"] for c in _containers(server, "edge")}
    assert edge_services == {"client", "lb"}  # no container for an external service or an alias

    wait_until("the client runs and resolves", lambda: _lookup(server, "client"), 120)
    by_ip = wait_until("by-ip resolves", lambda: _lookup(server, "by-ip"), 30)
    assert web_ips["a"] in by_ip
    by_name = wait_until("by-name resolves", lambda: _lookup(server, "by-name"), 30)
    assert "b.web.corral.internal" in by_name and web_ips["b"] in by_name  # the CNAME, then its address
    both = wait_until("the alias resolves", lambda: _lookup(server, "both"), 30)
    assert web_ips["a"] in both and web_ips["b"] in both

    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "ext1")
    assert wait_until("ip.example reaches a", lambda: _get(address, "ip.example"), 120) == "from-a"
    assert wait_until("name.example reaches b", lambda: _get(address, "name.example"), 60) == "from-b"
    seen = set()
    for _ in range(20):
        seen.add(wait_until("alias.example answers", lambda: _get(address, "alias.example"), 60))
    assert seen == {"from-a", "from-b"}
