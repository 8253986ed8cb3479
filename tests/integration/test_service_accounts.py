"""Service accounts on a real host: a container labelled `io.rancher.container.create_agent: true` sees its own
environment's credentials in its environment, the metadata service does not serve them (to it or any other
container), they act with the restricted role, and they stop working once the stack is removed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration

COMPOSE = """\
version: '2'
services:
  robot:
    image: corral/busybox:latest
    command: sleep 3600
    labels:
      io.rancher.container.create_agent: 'true'
      io.rancher.container.agent.role: environment
  neighbour:
    image: corral/busybox:latest
    command: sleep 3600
"""


def _as(server: ServerProcess, access_key: str, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.cli_env(), "CORRAL_ACCESS_KEY": access_key, "CORRAL_SECRET_KEY": secret}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_labelled_container_gets_its_own_credentials_and_nobody_else_sees_them(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("hosts", "create", "--driver", "local", "sa1")
    server.cli("up", "-d", "-f", str(_write(tmp_path, "docker-compose.yml", COMPOSE)), "-s", "bots")
    wait_until(
        "both containers running",
        lambda: len([c for c in _containers(server, "bots") if c["state"] == "running" and c["ip"]]) == 2,
        180,
    )

    env_lines = server.cli("exec", "bots-robot-1", "--", "env").stdout.splitlines()
    environment = dict(line.split("=", 1) for line in env_lines if "=" in line)
    access_key, secret = environment["CATTLE_ACCESS_KEY"], environment["CATTLE_SECRET_KEY"]
    assert environment["CATTLE_URL"].endswith("/v1") and environment["CORRAL_ACCESS_KEY"] == access_key
    neighbour = server.cli("exec", "bots-neighbour-1", "--", "env").stdout
    assert "CATTLE_" not in neighbour and secret not in neighbour
    for container in ("bots-robot-1", "bots-neighbour-1"):
        for path in ("/latest/self/container", "/latest/self/service", "/latest/services/robot"):
            answer = server.cli(
                "exec", container, "--", "sh", "-c", f"timeout 5 wget -qO- http://169.254.169.250{path}", check=False
            ).stdout
            assert secret not in answer and access_key not in answer, (container, path)

    listed = _as(server, access_key, secret, "ps", "--format", "json")
    assert listed.returncode == 0, listed.stderr  # restricted: its own environment's stacks
    refused = _as(server, access_key, secret, "hosts", "rm", "sa1")
    assert refused.returncode == 1 and "restricted role may not write hosts" in refused.stderr

    server.cli("rm", "bots")
    wait_until(
        "the credentials die with the container",
        lambda: _as(server, access_key, secret, "ps").returncode == 1,
        60,
    )
