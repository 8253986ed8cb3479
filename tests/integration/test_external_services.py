"""External services and aliases on a real netns host (issue 19 item 4): an external service by IP and one by
hostname resolve from a container (A records; a CNAME followed by the target's address) and work as LB targets;
an alias resolves to the linked services' containers and is an LB target too. No container runs for any of them.
An external service by IP with a health check: an IP that fails it leaves DNS answers and the LB's backends, and
comes back when it passes again (every agent probes, agent/external_health.py)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import LB_SETTINGS, ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration
SERVER_SETTINGS = LB_SETTINGS  # HAProxy's image into this module's hosts (conftest.py)

WEB = """\
version: '2'
services:
  a:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ok && echo from-a > /www/index.html
               && exec httpd -f -p 8080 -h /www"]
  b:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ok && echo from-b > /www/index.html
               && exec httpd -f -p 8080 -h /www"]
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


CHECKED = """\
version: '2'
services:
  pair:
    image: rancher/external-service
  client:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["81:81"]
"""

CHECKED_RANCHER = """\
version: '2'
services:
  pair:
    external_ips: ["{a_ip}", "{b_ip}"]
    health_check:
      port: 8080
      request_line: GET /ok HTTP/1.0
      interval: 1000
      response_timeout: 1000
      healthy_threshold: 2
      unhealthy_threshold: 2
  lb:
    lb_config:
      port_rules:
      - {{source_port: 81, target_port: 8080, service: pair}}
"""


def _get(address: str, host: str, port: int = 80) -> str | None:
    try:
        connection = http.client.HTTPConnection(address, port, timeout=5)
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        return response.read().decode().strip() if response.status == 200 else None
    except OSError:
        return None


def _lookup(server: ServerProcess, name: str, client: str = "edge-client-1") -> str:
    """busybox nslookup's answers ("" when none): it also asks the search list's names and AAAA records, whose
    NXDOMAIN make its exit status useless here."""
    result = server.cli("exec", client, "--", "nslookup", name, check=False)
    return result.stdout if "Name:" in result.stdout else ""


@pytest.fixture(scope="module")
def web(module_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One netns host `ext1` with stack `web` (a and b: httpd on 8080 serving their name at / and `ok` at /ok):
    their addresses, and the host's ("host")."""
    server = module_server
    server.cli("hosts", "create", "--driver", "local", "ext1")
    server.cli("up", "-d", "-f", str(_write(tmp_path_factory.mktemp("web"), "docker-compose.yml", WEB)), "-s", "web")

    def ips() -> dict[str, str] | None:
        found = {c["service"]: c.get("ip") for c in _containers(server, "web") if c["state"] == "running"}
        return found if found.get("a") and found.get("b") else None

    found = wait_until("web's a and b run with addresses", ips, 120)
    with server.client() as client:
        found["host"] = next(h["address"] for h in client.list_hosts() if h["name"] == "ext1")
    yield found


def test_external_services_and_an_alias_resolve_and_serve_through_an_lb(
    module_server: ServerProcess, web: dict[str, str], tmp_path: Path
) -> None:
    server, web_ips = module_server, web
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

    address = web["host"]
    assert wait_until("ip.example reaches a", lambda: _get(address, "ip.example"), 120) == "from-a"
    assert wait_until("name.example reaches b", lambda: _get(address, "name.example"), 60) == "from-b"
    seen = set()
    for _ in range(20):
        seen.add(wait_until("alias.example answers", lambda: _get(address, "alias.example"), 60))
    assert seen == {"from-a", "from-b"}


def test_an_external_ip_failing_its_health_check_leaves_dns_and_the_lb_until_it_passes_again(
    module_server: ServerProcess, web: dict[str, str], tmp_path: Path
) -> None:
    server, a_ip, b_ip, address = module_server, web["a"], web["b"], web["host"]
    compose = _write(tmp_path, "docker-compose.yml", CHECKED)
    rancher = _write(tmp_path, "rancher-compose.yml", CHECKED_RANCHER.format(a_ip=a_ip, b_ip=b_ip))
    result = server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "checked")
    assert "health_check" not in result.stdout + result.stderr  # kept, not warned about

    def answers() -> set[str]:
        found = _lookup(server, "pair", "checked-client-1")
        return {ip for ip in (a_ip, b_ip) if ip in found}

    def served(count: int = 10) -> set[str | None]:
        return {_get(address, "any.example", 81) for _ in range(count)}

    wait_until("the client runs and resolves", lambda: _lookup(server, "client", "checked-client-1"), 120)
    wait_until("pair answers both IPs", lambda: answers() == {a_ip, b_ip}, 60)
    wait_until("the LB sends to both", lambda: {"from-a", "from-b"} <= served(), 120)

    server.cli("exec", "web-b-1", "--", "rm", "/www/ok")  # b still listens (HAProxy's own TCP check passes)
    try:
        wait_until("b leaves pair's DNS answers", lambda: answers() == {a_ip}, 60)
        wait_until("the LB sends to a only", lambda: served() == {"from-a"}, 60)
        assert served(20) == {"from-a"}
        assert answers() == {a_ip}
    finally:
        server.cli("exec", "web-b-1", "--", "sh", "-c", "echo ok > /www/ok")
    wait_until("b is back in pair's DNS answers", lambda: answers() == {a_ip, b_ip}, 60)
    wait_until("the LB sends to b again", lambda: "from-b" in served(), 60)
