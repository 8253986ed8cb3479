"""Cattle scheduling rules on real hosts: global services, anti-affinity, host-label affinity, evacuation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _wait_running, _write

pytestmark = pytest.mark.integration


def _service(server: ServerProcess, ref: str) -> dict:
    with server.client() as client:
        return client.stacks.find_service("default", ref)


def test_a_global_service_follows_a_host_added_later(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "g1", "g2")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n  agent:\n    image: corral/busybox:latest\n    command: sleep 3600\n"
        "    labels:\n      io.rancher.scheduler.global: 'true'\n",
    )
    server.cli("up", "-f", str(compose), "-s", "mon")
    assert {c["host"] for c in _wait_running(server, "mon", "agent", 2)} == {"g1", "g2"}
    _create_hosts(server, "g3")
    assert {c["host"] for c in _wait_running(server, "mon", "agent", 3)} == {"g1", "g2", "g3"}


def test_anti_affinity_spreads_three_and_leaves_the_fourth_pending_with_a_reason(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "a1", "a2", "a3")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n  web:\n    image: corral/busybox:latest\n    command: sleep 3600\n    labels:\n"
        "      io.rancher.scheduler.affinity:container_label_ne:"
        " io.rancher.stack_service.name=$${stack_name}/$${service_name}\n",
    )
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  web:\n    scale: 4\n")
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "spread")
    web = wait_until(
        "three running and a reason for the fourth",
        lambda: (
            [c for c in _containers(server, "spread") if c["state"] == "running"]
            if len([c for c in _containers(server, "spread") if c["state"] == "running"]) == 3
            and _service(server, "spread/web")["reason"]
            else None
        ),
        timeout=60,
    )
    assert sorted(c["host"] for c in web) == ["a1", "a2", "a3"]
    reason = _service(server, "spread/web")["reason"]
    assert reason.startswith("#4: ") and "container_label_ne" in reason, reason
    result = server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "spread", "--timeout", "30", check=False)
    assert result.returncode == 1 and "#4" in result.stderr


def test_host_label_affinity_and_evacuation(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "e1", "e2", extra=(("--label", "disk=ssd", "e3"),))
    server.cli("hosts", "label", "e2", "disk=ssd")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n  db:\n    image: corral/busybox:latest\n    command: sleep 3600\n"
        "    stop_grace_period: 1s\n"  # as PID 1, sleep ignores SIGTERM: evacuation would wait 10 s per stop
        "    labels:\n"
        "      io.rancher.scheduler.affinity:host_label: disk=ssd\n",
    )
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  db:\n    scale: 2\n")
    server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "data")
    assert sorted(c["host"] for c in _wait_running(server, "data", "db", 2)) == ["e2", "e3"]

    server.cli("hosts", "evacuate", "e3")
    wait_until(
        "db moved off e3",
        lambda: sorted(c["host"] for c in _containers(server, "data") if c["state"] == "running") == ["e2", "e2"],
        timeout=60,
    )
    assert "active (evacuating)" in server.cli("hosts", "ls").stdout


def test_a_malformed_scheduling_label_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n  web:\n    image: corral/busybox:latest\n    labels:\n"
        "      io.rancher.scheduler.affinity:host_label: nopair\n",
    )
    result = server.cli("up", "-f", str(compose), "-s", "broken", check=False)
    assert result.returncode == 1
    assert "docker-compose.yml: service web" in result.stderr and "nopair" in result.stderr
    assert server.client().stacks.list_all() == []
