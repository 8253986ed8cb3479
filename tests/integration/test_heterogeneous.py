"""Heterogeneous hosts for real: an arm64 image runs only on the host declared aarch64 (under qemu-user-static
binfmt on this x86_64 machine), an amd64 image never lands there, and without an arm64 host the service stays
pending with a reason that says so until one is added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.integration.conftest import skip_or_fail
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _engine, _wait_running, _write

pytestmark = pytest.mark.integration

ARM_IMAGE = "corral/busybox-arm64:latest"
QEMU_HANDLER = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")

EDGE = """
version: '2'
services:
  probe:
    image: corral/busybox-arm64
    command: sh -c 'uname -m; sleep 3600'
  native:
    image: corral/busybox:latest
    command: sleep 3600
"""
EDGE_SCALE = "version: '2'\nservices:\n  probe:\n    scale: 2\n  native:\n    scale: 3\n"


@pytest.fixture(autouse=True)
def arm64_ready(prerequisites: None) -> None:
    """The arm64 image and the qemu handler come from scripts/setup-arm64.sh (run by `make setup`)."""
    if not QEMU_HANDLER.exists():
        skip_or_fail(f"qemu-aarch64 is not registered with binfmt_misc ({QEMU_HANDLER}); run scripts/setup-arm64.sh")
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    try:
        architecture = client.images.get(ARM_IMAGE).attrs.get("Architecture")
    except docker.errors.ImageNotFound:
        architecture = None
    finally:
        client.close()
    if architecture != "arm64":
        skip_or_fail(
            f"{ARM_IMAGE} with architecture arm64 is missing (found {architecture}); run scripts/setup-arm64.sh"
        )


def _hosts(server: ServerProcess) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        return {h["name"]: h for h in client.list_hosts("default")}


def _service(server: ServerProcess, ref: str) -> dict[str, Any]:
    with server.client() as client:
        return client.stacks.find_service("default", ref)


def test_an_arm64_image_runs_only_on_the_arm64_host_and_an_amd64_image_never_does(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "x1", "x2", extra=(("--arch", "aarch64", "arm1"),))
    listing = server.cli("hosts", "ls").stdout
    assert any(line.split()[:3] == ["arm1", "active", "aarch64"] for line in listing.splitlines()), listing
    hosts = _hosts(server)
    assert hosts["arm1"]["images"][ARM_IMAGE] == ["aarch64"]  # reported by the agent, copied by the local driver
    assert hosts["x1"]["images"]["corral/busybox:latest"] == ["x86_64"]

    compose = _write(tmp_path, "docker-compose.yml", EDGE)
    rancher = _write(tmp_path, "rancher-compose.yml", EDGE_SCALE)
    server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "edge")
    probes = _wait_running(server, "edge", "probe", 2)
    assert [c["host"] for c in probes] == ["arm1", "arm1"]
    natives = _wait_running(server, "edge", "native", 3)
    assert {c["host"] for c in natives} == {"x1", "x2"}  # spread over the x86_64 hosts, none on arm1
    assert _service(server, "edge/probe")["reason"] == "" and _service(server, "edge/native")["reason"] == ""

    logs = wait_until(
        "both probes printed their machine",
        lambda: text if (text := server.cli("logs", "edge/probe").stdout).count("aarch64") >= 2 else None,
        timeout=30,
    )
    assert "x86_64" not in logs, logs
    engine = _engine(server, "arm1")
    try:
        for probe in probes:
            container = engine.containers.get(probe["name"])
            assert container.exec_run("uname -m").output.decode().strip() == "aarch64"
    finally:
        engine.close()


def test_without_an_arm64_host_the_service_waits_with_a_reason_until_one_is_added(
    server: ServerProcess, tmp_path: Path
) -> None:
    _create_hosts(server, "p1", "p2")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        "version: '2'\nservices:\n  probe:\n    image: corral/busybox-arm64\n    command: sleep 3600\n",
    )
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  probe:\n    scale: 3\n")
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "wait")
    reason = wait_until("the pending reason", lambda: _service(server, "wait/probe")["reason"] or None, timeout=30)
    why = "needs arm64: 0 of 2 active hosts match (they have x86_64)"
    assert reason == f"#1-#3: {why}", reason  # the three indexes wait for the same reason: one group
    assert _containers(server, "wait") == []

    # An image event on an engine updates its host's report (here a new tag of the arm64 image).
    engine = _engine(server, "p1")
    try:
        engine.images.get(ARM_IMAGE).tag("corral/edge-tagged", "1")
        wait_until(
            "p1 reports the new tag",
            lambda: _hosts(server)["p1"]["images"].get("corral/edge-tagged:1") == ["aarch64"],
            timeout=30,
        )
        assert _containers(server, "wait") == []
        assert [c.name for c in engine.containers.list(all=True)] == []  # never created, not even briefly
    finally:
        engine.close()

    server.cli("hosts", "create", "--driver", "local", "--arch", "aarch64", "p3")
    probes = _wait_running(server, "wait", "probe", 3)
    assert [c["host"] for c in probes] == ["p3", "p3", "p3"]
    wait_until("the reason is gone", lambda: _service(server, "wait/probe")["reason"] == "", timeout=30)
