"""Sidekick units on real hosts: a primary and its sidekicks always share a host, index by index, through scaling
and evacuation; a sidekick sees its unit's volumes (`volumes_from`) and network namespace (`network_mode`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from corral.agent.converge import ActionKind
from corral.model.stack import VolumeSpec
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_agent_converge import World, sleeper, world  # noqa: F401 (the fixture)
from tests.integration.test_stacks import _containers, _create_hosts, _write

pytestmark = pytest.mark.integration

COMPOSE = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo web-here > /www/index.html && exec httpd -f -p 8000 -h /www"]
    stop_grace_period: 1s  # as PID 1, httpd and sleep ignore SIGTERM: evacuation would wait 10 s per stop
    labels:
      io.rancher.sidekicks: data, helper
  data:
    image: corral/busybox:latest
    command: ["sh", "-c", "echo written-by-data > /data/note && exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [/data]
  helper:
    image: corral/busybox:latest
    command: sleep 3600
    stop_grace_period: 1s
    volumes_from: [data]
    network_mode: container:web
"""


def _units(server: ServerProcess, stack: str, scale: int) -> dict[int, set[str]] | None:
    """index -> hosts of its three containers once all 3 x `scale` run (else None)."""
    containers = _containers(server, stack)
    running = [c for c in containers if c["state"] == "running"]
    if len(running) != 3 * scale or len(containers) != 3 * scale:
        return None
    hosts: dict[int, set[str]] = defaultdict(set)
    services: dict[int, set[str]] = defaultdict(set)
    for c in running:
        hosts[c["index"]].add(c["host"])
        services[c["index"]].add(c["service"])
    if sorted(hosts) != list(range(1, scale + 1)) or any(s != {"web", "data", "helper"} for s in services.values()):
        return None
    return dict(hosts)


def _together(server: ServerProcess, stack: str, scale: int, avoid: str = "") -> dict[int, str]:
    def check() -> dict[int, str] | None:
        units = _units(server, stack, scale)
        if units is None or any(avoid in hosts for hosts in units.values()):
            return None
        return {index: next(iter(hosts)) for index, hosts in units.items() if len(hosts) == 1} or None

    placed: dict[int, str] = wait_until(f"{stack}: {scale} units running", check, timeout=120)
    assert sorted(placed) == list(range(1, scale + 1)), f"a unit is split over hosts: {_units(server, stack, scale)}"
    return placed


def _exec(server: ServerProcess, container: str, *cmd: str) -> Any:
    return server.cli("exec", container, "--", *cmd, check=False)


def test_a_sidekick_unit_shares_a_host_volumes_and_network_through_scale_and_evacuation(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "k1", "k2", "k3")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  web:\n    scale: 3\n")
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "unit")
    placed = _together(server, "unit", 3)
    assert sorted(placed.values()) == ["k1", "k2", "k3"]  # the unit's demand spreads like the primary

    for index in (1, 2, 3):
        note = wait_until(
            "the helper reads the file data wrote",
            lambda i=index: (r := _exec(server, f"unit-helper-{i}", "cat", "/data/note")).returncode == 0 and r,
            timeout=30,
        )
        assert note.stdout.strip() == "written-by-data"
        page = _exec(server, f"unit-helper-{index}", "timeout", "5", "wget", "-qO-", "http://127.0.0.1:8000/")
        assert page.stdout.strip() == "web-here", page  # localhost is web's: one network namespace

    with server.client() as client:
        helper = client.stacks.find_service("default", "unit/helper")
    assert helper["sidekick_of"] == "web" and helper["scale"] == 3

    refused = server.cli("scale", "unit/data=5", check=False)
    assert refused.returncode == 1 and "data is a sidekick of web" in refused.stderr

    server.cli("scale", "unit/web=4")
    placed = _together(server, "unit", 4)

    evacuated = placed[1]
    server.cli("hosts", "evacuate", evacuated)
    moved = _together(server, "unit", 4, avoid=evacuated)
    assert evacuated not in moved.values()
    page = _exec(server, "unit-helper-1", "timeout", "5", "wget", "-qO-", "http://127.0.0.1:8000/")
    assert page.stdout.strip() == "web-here", page


# -- the agent's converger on the machine's engine (no server): order, waiting, recreating with the target


def test_a_dependent_waits_for_its_sidekick_and_is_recreated_with_it(world: World) -> None:  # noqa: F811
    helper_launch = sleeper(network_mode="service:web", volumes_from=("data",))
    helper = world.desired("helper", helper_launch, service="helper")
    report = world.converge(helper)
    assert "waiting for sidekick data" in report.problems[helper.slot.id]
    assert world.slot_containers(helper.slot.id) == []

    web = world.desired("web", sleeper(), service="web")
    data = world.desired("data", sleeper(volumes=(VolumeSpec("anonymous", "/data"),)), service="data")
    report = world.converge(helper, data, web)
    assert report.problems == {}
    assert [r.action.slot_id for r in report.results][-1] == helper.slot.id  # its targets first
    web_id, data_id = world.inspect(web.slot.name)["Id"], world.inspect(data.slot.name)["Id"]
    info = world.inspect(helper.slot.name)
    assert info["HostConfig"]["NetworkMode"] == f"container:{web_id}"
    assert info["HostConfig"]["VolumesFrom"] == [f"{data_id}:rw"]
    assert info["State"]["Status"] == "running"
    assert world.converge(helper, data, web).results == ()  # converged: nothing to do

    changed_web = world.desired("web", sleeper(environment=(("V", "2"),)), service="web")
    report = world.converge(helper, data, changed_web)
    assert [(r.action.kind, r.action.slot_id) for r in report.results] == [
        (ActionKind.RECREATE, changed_web.slot.id),
        (ActionKind.RECREATE, helper.slot.id),
    ]
    new_web_id = world.inspect(web.slot.name)["Id"]
    assert new_web_id != web_id
    info = world.inspect(helper.slot.name)
    assert info["HostConfig"]["NetworkMode"] == f"container:{new_web_id}"
    assert info["State"]["Status"] == "running"
