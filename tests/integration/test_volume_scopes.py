"""Named volumes with Rancher's scopes on a real host (issue 17 item 4): a stack's volume is its own (two stacks
with the same key keep separate data), `per_container` gives each container index its own volume, and an
`external` volume must exist: the container waits, saying why, until it does, then mounts its data."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _create_hosts, _engine, _wait_running, _write

pytestmark = pytest.mark.integration

STACK_VOLUME = """\
services:
  app:
    image: corral/busybox:latest
    command: sleep 3600
    volumes: [data:/data]
volumes:
  data: {}
"""

SCOPES = """\
services:
  app:
    image: corral/busybox:latest
    command: sleep 3600
    scale: 2
    volumes: [cache:/cache]
  reader:
    image: corral/busybox:latest
    command: sleep 3600
    volumes: [shared:/shared:ro]
volumes:
  cache: {per_container: true}
  shared: {external: true}
"""


def _run(engine: docker.DockerClient, docker_id: str, command: str) -> str:
    code, output = engine.containers.get(docker_id).exec_run(["sh", "-c", command])
    assert code == 0, output
    return str(output.decode().strip())


def test_two_stacks_with_the_same_volume_key_keep_separate_data(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "vs1")
    compose = _write(tmp_path, "compose.yaml", STACK_VOLUME)
    server.cli("up", "-f", str(compose), "-s", "first")
    server.cli("up", "-f", str(compose), "-s", "second")
    (first,) = _wait_running(server, "first", "app", 1)
    (second,) = _wait_running(server, "second", "app", 1)
    engine = _engine(server, "vs1")
    _run(engine, first["docker_id"], "echo first > /data/owner")
    assert _run(engine, second["docker_id"], "cat /data/owner 2>/dev/null || echo empty") == "empty"
    _run(engine, second["docker_id"], "echo second > /data/owner")
    assert _run(engine, first["docker_id"], "cat /data/owner") == "first"
    assert {"first_data", "second_data"} <= {v.name for v in engine.volumes.list()}
    engine.close()


def test_per_container_volumes_and_an_external_volume_that_must_exist(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "vs2")
    compose = _write(tmp_path, "compose.yaml", SCOPES)
    server.cli("up", "-d", "-f", str(compose), "-s", "scoped")
    apps = _wait_running(server, "scoped", "app", 2)
    engine = _engine(server, "vs2")
    for app in apps:
        _run(engine, app["docker_id"], f"echo {app['name']} > /cache/who")
    for app in apps:
        assert _run(engine, app["docker_id"], "cat /cache/who") == app["name"]
    names = {v.name for v in engine.volumes.list()}
    assert {"scoped_cache_1", "scoped_cache_2"} <= names and "scoped_cache" not in names

    def reader_reason() -> str | None:
        found = [c for c in _containers(server, "scoped") if c["service"] == "reader"]
        return found[0]["reason"] if found and "external volume 'shared'" in found[0]["reason"] else None

    reason = wait_until("the reader to say it waits for the external volume", reader_reason, 60)
    assert "does not exist on this host" in reason, reason
    assert "shared" not in {v.name for v in engine.volumes.list()}  # Docker did not create an empty one
    engine.volumes.create("shared")
    seed = engine.containers.run(
        "corral/busybox:latest", ["sh", "-c", "echo seeded > /s/data"], volumes={"shared": {"bind": "/s"}}, remove=True
    )
    assert seed == b""
    (reader,) = _wait_running(server, "scoped", "reader", 1, timeout=60)
    assert _run(engine, reader["docker_id"], "cat /shared/data") == "seeded"
    engine.close()
