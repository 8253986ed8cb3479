"""`corral run` on a real netns host (issue 18): the standalone container runs on the engine with the env and the
published port asked for (and answers on it), `corral stop` leaves it exited on the engine, `corral rm` removes it
from the engine."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _create_hosts, _engine

pytestmark = pytest.mark.integration

HOST = "run1"
PAGE = "mkdir -p /www && echo $GREETING > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(scope="module")
def hosts(module_server: ServerProcess) -> Iterator[ServerProcess]:
    _create_hosts(module_server, HOST)
    yield module_server


def _standalone(server: ServerProcess) -> list[dict[str, Any]]:
    return json.loads(server.cli("ps", "--standalone", "-a", "--format", "json").stdout)


def _page(address: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{address}:8089/", timeout=2) as response:
            return response.read().decode().strip()
    except OSError:
        return None


def test_run_stop_rm_on_the_engine(hosts: ServerProcess) -> None:
    server = hosts
    ran = server.cli(
        "run", "--name", "web", "-e", "GREETING=hello", "-p", "8089:80", "--restart", "always",
        "corral/busybox:latest", "sh", "-c", PAGE,
    )  # fmt: skip
    assert ran.stdout.strip().splitlines()[-1] == "web"
    (listed,) = _standalone(server)
    assert (listed["name"], listed["state"], listed["host"]) == ("web", "running", HOST)

    engine = _engine(server, HOST)
    container = engine.containers.get("web")
    assert container.status == "running"
    assert "GREETING=hello" in container.attrs["Config"]["Env"]
    assert container.attrs["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == "8089"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert wait_until("the page on the published port", lambda: _page(listed["host_address"]) == "hello", 30)

    server.cli("stop", "web")
    container.reload()
    assert container.status == "exited"
    assert _standalone(server)[0]["state"] in ("exited", "stopped")

    assert server.cli("rm", "web").stdout.strip() == "web"
    assert _standalone(server) == []

    def gone() -> bool:
        try:
            engine.containers.get("web")
        except docker.errors.NotFound:
            return True
        return False

    assert wait_until("web removed from the engine", gone, 60)
