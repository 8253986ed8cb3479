"""Compose networks on real hosts (issue 17 item 5): a container on `back` only cannot reach one on `front` only,
one on both reaches both, on the same host and across hosts over the encrypted overlay; DNS answers per network
(aliases included); a stack that declares no
networks still reaches everyone (Rancher's flat network)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _write

pytestmark = pytest.mark.integration

HTTPD = '["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]'
SEGMENTED = f"""\
services:
  front:
    image: corral/busybox:latest
    command: {HTTPD}
    scale: 2
    networks: [front]
  back:
    image: corral/busybox:latest
    command: {HTTPD}
    scale: 2
    networks: [back]
  both:
    image: corral/busybox:latest
    command: {HTTPD}
    scale: 2
    networks:
      front: {{aliases: [middle]}}
      back: {{}}
networks:
  front: {{}}
  back: {{}}
"""
FLAT = f"""\
services:
  probe:
    image: corral/busybox:latest
    command: {HTTPD}
"""


def _fetch(server: ServerProcess, container: str, ip: str) -> bool:
    result = server.cli("exec", container, "--", "timeout", "3", "wget", "-qO-", f"http://{ip}/", check=False)
    return result.returncode == 0 and result.stdout.strip() != ""


def _running(server: ServerProcess, stack: str, count: int) -> list[dict[str, Any]] | None:
    found = [c for c in _containers(server, stack) if c["state"] == "running" and c.get("ip")]
    return found if len(found) == count else None


def test_a_container_reaches_only_the_networks_it_is_on(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "sg1", "sg2")
    server.cli("up", "-d", "-f", str(_write(tmp_path, "compose.yaml", SEGMENTED)), "-s", "seg")
    flat_dir = tmp_path / "flat"
    flat_dir.mkdir()
    server.cli("up", "-d", "-f", str(_write(flat_dir, "compose.yaml", FLAT)), "-s", "flat")
    containers = wait_until("six running containers", lambda: _running(server, "seg", 6), timeout=120)
    (probe,) = wait_until("the flat probe", lambda: _running(server, "flat", 1), timeout=60)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for container in containers:
        by_service.setdefault(container["service"], []).append(container)
    assert {c["host"] for c in by_service["front"]} == {"sg1", "sg2"}  # same host and across hosts both occur

    # allowed pairs first (they also prove the overlay works), then the refused ones
    allowed = [("both", "front"), ("both", "back"), ("front", "both"), ("back", "both"), ("front", "front")]
    for source, target in allowed:
        for one, other in itertools.product(by_service[source], by_service[target]):
            if one is other:
                continue
            assert wait_until(
                f"{one['name']} -> {other['name']}", lambda o=one, t=other: _fetch(server, o["name"], t["ip"]), 30
            )
    for source, target in (("back", "front"), ("front", "back")):
        for one, other in itertools.product(by_service[source], by_service[target]):
            assert not _fetch(server, one["name"], other["ip"]), f"{one['name']} reached {other['name']}"
    # DNS answers per network: an alias on `front` for front's containers, no `front` service on `back`
    front_one, back_one = by_service["front"][0]["name"], by_service["back"][0]["name"]
    assert wait_until("front resolves the alias", lambda: _fetch(server, front_one, "middle"), 30)
    assert not _fetch(server, back_one, "middle")
    assert not _fetch(server, back_one, "front")
    assert _fetch(server, back_one, "both")
    # the flat stack is Rancher's environment network: it reaches the segmented containers and they reach it
    for container in containers:
        assert _fetch(server, probe["name"], container["ip"]), container["name"]
    assert _fetch(server, by_service["back"][0]["name"], probe["ip"])
