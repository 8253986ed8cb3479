"""Network-state deltas on real hosts (model/network_deltas.py): the agents take their `network` state as deltas
after the first full one, and DNS by name and the overlay keep working as the service scales up, then down after the
client host's agent is killed and reconnects (it starts again from a full state, then deltas again).

The query path is the real one (as tests/integration/test_dns.py): busybox's resolver -> Docker's embedded DNS ->
the agent's DNS on the services address; fetches cross the overlay to the other host."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_dns import _exec, _lookup, _running
from tests.integration.test_hosts import _host
from tests.integration.test_stacks import _write

pytestmark = pytest.mark.integration

COMPOSE = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s  # as PID 1, httpd ignores SIGTERM: the scale-down would wait 10 s for Docker's kill
    labels:
      io.rancher.scheduler.affinity:host_label: role=b
  client:
    image: corral/busybox:latest
    command: sleep 3600
    labels:
      io.rancher.scheduler.affinity:host_label: role=a
"""


def _web_ips(server: ServerProcess, count: int) -> set[str] | None:
    web = _running(server, "web")
    ips = {c.get("ip", "") for c in web}
    if len(web) != count or "" in ips or not _running(server, "client"):
        return None
    return ips


def _agent_log(server: ServerProcess, host: str) -> str:
    return (server.data_dir / "hosts" / host / "agent.log").read_text(errors="replace")


def _scaled_and_resolved(server: ServerProcess, count: int) -> set[str]:
    server.cli("scale", f"shop/web={count}")
    ips = wait_until(f"web x{count} running with addresses", lambda: _web_ips(server, count), timeout=120)
    wait_until(f"web resolves to its {count} addresses", lambda: _lookup(server, "web") == ips, timeout=60)
    pages: set[str] = set()
    for _ in range(10 * count):  # random order: each container answers by name, over the overlay from the other host
        fetched = _exec(server, "shop-client-1", "timeout 5 wget -qO- http://web.shop/")
        assert fetched.returncode == 0, fetched.stderr
        pages.add(fetched.stdout.strip())
        if len(pages) == count:
            break
    assert len(pages) == count, pages
    return ips


def test_dns_and_overlay_follow_deltas_across_scaling_and_a_reconnect(server: ServerProcess, tmp_path: Path) -> None:
    server.cli_all(
        ("hosts", "create", "--driver", "local", "--label", "role=a", "nda"),
        ("hosts", "create", "--driver", "local", "--label", "role=b", "ndb"),
    )
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    server.cli("up", "-d", "-f", str(compose), "-s", "shop")
    wait_until("web and client running", lambda: _web_ips(server, 1), timeout=120)

    _scaled_and_resolved(server, 3)
    assert "network delta: version" in _agent_log(server, "nda")  # the client's host took the changes as deltas

    record = server.driver().load("nda")
    assert record is not None
    killed, log_before = record.agent_pid, len(_agent_log(server, "nda"))
    os.kill(killed, signal.SIGKILL)  # the server supervises its local hosts and starts the agent again
    # The new agent may reconnect faster than one `hosts ls` takes, so the brief `reconnecting` can be missed by a
    # poll: what must hold is a new agent process that connected again and an active host.
    wait_until("a new agent on nda", lambda: _agent_pid(server, "nda") not in (None, killed), timeout=60)
    wait_until("the new agent connected", lambda: "connected to " in _agent_log(server, "nda")[log_before:], timeout=60)
    wait_until("nda active again", lambda: _host_state(server, "nda") == "active", timeout=60)
    log_before = len(_agent_log(server, "nda"))
    _scaled_and_resolved(server, 2)  # down, after the reconnect's full state
    assert "network delta: version" in _agent_log(server, "nda")[log_before:]  # deltas again after the full state


def _agent_pid(server: ServerProcess, name: str) -> int | None:
    record = server.driver().load(name)
    return record.agent_pid if record is not None else None


def _host_state(server: ServerProcess, name: str) -> str:
    return str(_host(server, name).get("state", ""))
