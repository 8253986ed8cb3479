"""The LB's own start-first upgrade loses no connection (issue 19 acceptance): 50 clients (a new connection per
request) go through the LB's host port while the LB service is upgraded with `--start-first` on its one host. The
new HAProxy container runs beside the old one on the same `80:80` (the agent forwards the port, network/lb_ports.py),
takes the new connections once it is configured and listening, and the old one stops after its connections ended."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.servers import LB_SETTINGS, ServerProcess, wait_until
from tests.integration.test_lb_load import CLIENTS, Load, _lb_log, _serving_for
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration
SERVER_SETTINGS = LB_SETTINGS  # HAProxy's image into this module's hosts (conftest.py)

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["80:80"]
    environment:
      GENERATION: "{generation}"
  app:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      port_rules: [{source_port: 80, target_port: 8080, service: app}]
  app:
    scale: 2
"""


def _files(tmp_path: Path, generation: int) -> list[str]:
    compose = _write(tmp_path, f"docker-compose-{generation}.yml", COMPOSE.format(generation=generation))
    return ["-f", str(compose), "-f", str(_write(tmp_path, "rancher-compose.yml", RANCHER))]


def _lbs(server: ServerProcess) -> dict[str, str]:
    return {c["name"]: c["state"] for c in _containers(server, "edge") if c["service"] == "lb"}


def test_start_first_upgrade_of_the_lb_loses_no_connection(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "edge1")
    server.cli("up", "-d", *_files(tmp_path, 1), "-s", "edge")
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "edge1")
    started = time.monotonic()
    with Load(address) as load:
        wait_until("both app containers serve through the LB", lambda: len(_serving_for(load, 2)) == 2, 180)
        load.failures.clear()  # before the LB first answered: not what this test is about
        server.cli("up", *_files(tmp_path, 2), "-s", "edge", "--upgrade", "--start-first", "--batch-size", "1")
        wait_until(
            "the new LB runs and the old one stopped",
            lambda: (lbs := _lbs(server)).get("edge-lb-1-u1") == "running" and lbs.get("edge-lb-1") != "running",
            180,
        )
        assert len(_serving_for(load, 3)) == 2  # the new LB serves both targets
        server.cli("up", "-s", "edge", "--confirm-upgrade")
        wait_until("the old LB is gone", lambda: "edge-lb-1" not in _lbs(server), 60)
        assert len(_serving_for(load, 2)) == 2
    elapsed = time.monotonic() - started
    print(f"\nload: {CLIENTS} clients, {elapsed:.0f} s, {load.total} requests answered, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:20]
    assert _lb_log(server, "edge-lb-1-u1") == []
