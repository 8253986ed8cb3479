"""Service discovery on real hosts: a container on host A resolves `web`, `web.shop` and `web.shop.corral.internal`
to the overlay addresses of web's containers on host B and fetches from them by name; link and external_links
aliases and container names resolve too; short names are the asker's stack; a container whose health check fails
leaves the answers (its service then has none: NXDOMAIN).

The query path is the real one: busybox's resolver -> Docker's embedded DNS (127.0.0.11) -> the agent's DNS on
169.254.169.250, reached from the container's own address (so short names are the asker's stack)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration

COMPOSE = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    labels:
      io.rancher.scheduler.affinity:host_label: role=b
  flaky:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    labels:
      io.rancher.scheduler.affinity:host_label: role=b
  client:
    image: corral/busybox:latest
    command: sleep 3600
    links: ["web:www"]
    external_links: ["blog/web:blogweb"]
    labels:
      io.rancher.scheduler.affinity:host_label: role=a
"""

BLOG = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: sleep 3600
"""

RANCHER = """\
version: '2'
services:
  web:
    scale: 2
  flaky:
    health_check:
      port: 80
      request_line: GET /index.html HTTP/1.0
      interval: 500
      response_timeout: 1000
      healthy_threshold: 2
      unhealthy_threshold: 2
      initializing_timeout: 10000
      strategy: none
"""


def _exec(server: ServerProcess, container: str, command: str) -> Any:
    return server.cli("exec", container, "--", "sh", "-c", command, check=False)


def _lookup(server: ServerProcess, name: str, asker: str = "shop-client-1") -> set[str] | None:
    """The addresses `name` resolves to inside the client container; None when it does not resolve.

    busybox's nslookup walks the search list itself and prints one `Name:`/`Address:` pair per address found
    (its exit code is 1 when any of its tries failed, so it is not looked at)."""
    result = _exec(server, asker, f"nslookup {name}")
    _, _, answers = result.stdout.partition("Name:")
    found = set(re.findall(r"^Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)$", answers, re.MULTILINE))
    return found or None


def _running(server: ServerProcess, service: str, stack: str = "shop") -> list[dict[str, Any]]:
    return [c for c in _containers(server, stack) if c["service"] == service and c["state"] == "running"]


def test_names_resolve_across_hosts_and_unhealthy_containers_leave(server: ServerProcess, tmp_path: Path) -> None:
    server.cli_all(
        ("hosts", "create", "--driver", "local", "--label", "role=a", "dnsa"),
        ("hosts", "create", "--driver", "local", "--label", "role=b", "dnsb"),
    )
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER)
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "shop")
    other = _write(tmp_path, "blog.yml", BLOG)
    server.cli("up", "-d", "-f", str(other), "-s", "blog")

    def web_addresses() -> set[str] | None:
        web = _running(server, "web")
        ips = {c.get("ip", "") for c in web}
        if len(web) != 2 or "" in ips or not _running(server, "client"):
            return None
        return ips

    web_ips = wait_until("web x2 and the client running with overlay addresses", web_addresses, timeout=120)
    assert {c["host"] for c in _running(server, "web")} == {"dnsb"}
    assert {c["host"] for c in _running(server, "client")} == {"dnsa"}

    for name in ("web", "web.shop", "web.shop.corral.internal", "WEB.Shop", "www"):
        wait_until(f"{name} resolves to web's addresses", lambda n=name: _lookup(server, n) == web_ips, timeout=60)
    # a short name is the asker's own stack: blog's `web` asks for `web` and gets itself
    blog_ip = wait_until("blog's web running", lambda: next((c["ip"] for c in _running(server, "web", "blog")), ""), 60)
    assert _lookup(server, "web", asker="blog-web-1") == {blog_ip}
    assert _lookup(server, "web.blog") == {blog_ip}
    assert _lookup(server, "blogweb") == {blog_ip}  # the client's external_links alias
    assert _lookup(server, "web.shop", asker="blog-web-1") == web_ips
    web1 = next(c for c in _running(server, "web") if c["name"] == "shop-web-1")
    assert _lookup(server, "shop-web-1.corral.internal") == {web1["ip"]}

    # by name, over the overlay, to the other host: each page is the serving container's hostname; 20 fetches, each
    # resolving the name again, in one exec (the first that fails ends it with its exit status)
    fetches = "for i in $(seq 20); do timeout 5 wget -qO- http://web.shop/ || exit $?; done"
    fetched = _exec(server, "shop-client-1", fetches)
    assert fetched.returncode == 0, fetched.stderr
    pages = fetched.stdout.split()
    assert len(pages) == 20 and len(set(pages)) == 2, pages  # random order: both containers answer

    # other names still resolve through the host's resolvers, and Corral's own unknown names are NXDOMAIN
    assert _lookup(server, "nothing.shop.corral.internal") is None

    # flaky: healthy first (answered), then its check fails (strategy none keeps it running): it leaves the answers
    flaky_ip = wait_until("flaky healthy", lambda: _healthy_flaky(server), timeout=60)
    wait_until("flaky resolves", lambda: _lookup(server, "flaky") == {flaky_ip}, timeout=30)
    assert _exec(server, "shop-flaky-1", "rm /www/index.html").returncode == 0
    wait_until("flaky unhealthy", lambda: _flaky_health(server) == "unhealthy", timeout=60)
    wait_until("flaky leaves the answers", lambda: _lookup(server, "flaky") is None, timeout=30)
    assert _running(server, "flaky")  # still running: only DNS dropped it
    assert _lookup(server, "web") == web_ips


def _flaky_health(server: ServerProcess) -> str:
    flaky = _running(server, "flaky")
    return str(flaky[0].get("health", "")) if flaky else ""


def _healthy_flaky(server: ServerProcess) -> str | None:
    flaky = _running(server, "flaky")
    if flaky and flaky[0].get("health") == "healthy" and flaky[0].get("ip"):
        return str(flaky[0]["ip"])
    return None
