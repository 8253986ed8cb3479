"""The default catalog end to end on a real engine: `corral catalog install library/hello-web` runs the page,
`corral catalog upgrade --version 1` replaces it in a rolling upgrade, `--confirm` finishes it."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration


def _engine(server: ServerProcess, host: str) -> docker.DockerClient:
    record = server.driver().load(host)
    assert record is not None
    return docker.DockerClient(base_url=record.docker_host)


def _running(engine: docker.DockerClient) -> list[dict[str, Any]]:
    filters = {"label": ["io.corral.stack=hi", "io.corral.service=web"], "status": "running"}
    return list(engine.api.containers(filters=filters))


def _page(engine: docker.DockerClient, docker_id: str) -> str:
    exec_id = engine.api.exec_create(docker_id, ["wget", "-q", "-O", "-", "http://127.0.0.1/"])["Id"]
    return engine.api.exec_start(exec_id).decode()


def _pages(engine: docker.DockerClient) -> set[str]:
    return {_page(engine, c["Id"]) for c in _running(engine)}


def _stack(server: ServerProcess) -> dict[str, Any]:
    with server.client() as client:
        return client.stacks.find("default", "hi")


def test_install_then_rolling_upgrade_from_the_default_catalog(server: ServerProcess) -> None:
    server.cli("hosts", "create", "--driver", "local", "h1")
    engine = _engine(server, "h1")
    listed = json.loads(server.cli("catalog", "ls", "--format", "json").stdout)
    assert "library/hello-web" in [t["id"] for t in listed]

    bad = server.cli("catalog", "install", "library/hello-web", "-s", "hi", "--answer", "SCALE=lots", check=False)
    assert bad.returncode == 1 and "SCALE" in bad.stderr
    with server.client() as client:
        assert [s["name"] for s in client.stacks.list_all("default")] == []

    server.cli(
        "catalog", "install", "library/hello-web", "-s", "hi", "--version", "0",
        "--answer", "MESSAGE=first page", "--answer", "SCALE=2",
    )  # fmt: skip
    wait_until("2 web containers running", lambda: len(_running(engine)) == 2, 60)
    old = {c["Id"] for c in _running(engine)}
    assert _pages(engine) == {"first page\n"}
    origin = _stack(server)["catalog"]
    assert (origin["template"], origin["version"], origin["upgrades"]) == ("hello-web", "0", ["1"])

    server.cli("catalog", "upgrade", "hi", "--version", "1", "--batch-size", "1")
    stack = _stack(server)
    assert [s["state"] for s in stack["services"]] == ["upgraded"]
    assert stack["catalog"]["version"] == "1" and stack["catalog"]["answers"]["MESSAGE"] == "first page"
    new = wait_until("2 new containers running", lambda: (ids := {c["Id"] for c in _running(engine)}) - old and ids, 60)
    assert not new & old
    pages = _pages(engine)
    assert pages == {"<h1>first page</h1>\n<p>version 0.2.0</p>\n"}, pages

    server.cli("catalog", "upgrade", "hi", "--confirm")
    assert [s["state"] for s in _stack(server)["services"]] == ["active"]
    wait_until("the old containers removed", lambda: not old & {c["Id"] for c in engine.api.containers(all=True)}, 60)
