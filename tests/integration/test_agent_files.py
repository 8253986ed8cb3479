"""Secrets, configs and relative bind mounts on real hosts (issue 17 items 2 and 3): a `./conf/app.conf` bind and a
config are readable in every replica wherever it runs; a secret is readable only by the service that names it,
with its uid and mode, and is absent from every API response, event, log and `docker inspect`; an upgrade with a
changed file replaces the containers with the new content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.integration.conftest import TEST_IMAGE
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

VALUE = "Zq7-db-secret-value-never-shown-41"
COMPOSE = f"""
services:
  reader:
    image: {TEST_IMAGE}
    command: [sleep, '3600']
    stop_grace_period: 1s  # as PID 1, sleep ignores SIGTERM: the upgrade would wait 10 s per stop
    labels:
      io.rancher.scheduler.global: 'true'
    volumes: ['./conf/app.conf:/etc/app.conf:ro']
    secrets:
      - source: db
        uid: '1000'
        mode: 0400
    configs: [banner]
  other:
    image: {TEST_IMAGE}
    command: [sleep, '3600']
secrets:
  db: {{external: true}}
configs:
  banner: {{content: hello from a config}}
"""


def _engines(server: ServerProcess) -> list[docker.DockerClient]:
    return [docker.DockerClient(base_url=r.docker_host, timeout=60) for r in server.driver().records()]


def _running(engines: list[docker.DockerClient], service: str) -> list[Any]:
    label = f"io.corral.service={service}"
    return [c for e in engines for c in e.containers.list(filters={"label": label, "status": "running"})]


def _all(found: list[Any], count: int) -> list[Any] | None:
    return found if len(found) == count else None


def _read(container: Any, path: str) -> tuple[int, str]:
    try:
        code, output = container.exec_run(["cat", path])
    except docker.errors.APIError:  # stopped meanwhile (an upgrade replaces it)
        return -1, ""
    return code, output.decode(errors="replace")


def _answering_readers(engines: list[docker.DockerClient]) -> list[Any] | None:
    """A running reader on each host, each answering an exec (a CI run saw an exec come back empty: a first replica
    stopping as the check ran; with a 1 s stop grace it goes at once)."""
    readers = _all(_running(engines, "reader"), 2)
    if not readers:
        return None
    for reader in readers:
        try:
            code, _ = reader.exec_run(["stat", "/run/secrets/db"])
        except docker.errors.APIError:
            return None
        if code != 0:
            return None
    return readers


def test_files_and_secrets_on_every_replica_and_only_where_named(server: ServerProcess, tmp_path: Path) -> None:
    for host in ("h1", "h2"):
        server.cli("hosts", "create", "--driver", "local", host)
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "app.conf").write_text("answer = 42\n")
    (project / "docker-compose.yml").write_text(COMPOSE)
    value_file = tmp_path / "db.txt"
    value_file.write_text(VALUE)
    server.cli("secrets", "create", "db", str(value_file))
    value_file.unlink()
    listing = server.cli("secrets", "ls", "--format", "json").stdout
    assert json.loads(listing)[0]["name"] == "db" and VALUE not in listing

    server.cli("up", "-f", str(project / "docker-compose.yml"), "-s", "files")
    engines = _engines(server)
    try:
        readers = wait_until("a reader on each host that answers", lambda: _answering_readers(engines), timeout=120)
        [other] = wait_until("the other service", lambda: _running(engines, "other") or None, timeout=60)
        for reader in readers:
            assert _read(reader, "/etc/app.conf") == (0, "answer = 42\n")
            assert _read(reader, "/banner") == (0, "hello from a config")
            assert _read(reader, "/run/secrets/db") == (0, VALUE)
            code, stat = reader.exec_run(["stat", "-c", "%u %a", "/run/secrets/db"])
            assert stat.decode().split() == ["1000", "400"]
            code, _ = reader.exec_run(["sh", "-c", "echo x > /etc/app.conf"])
            assert code != 0  # read-only
            assert VALUE not in json.dumps(reader.attrs)  # inspect shows the host path only
        assert _read(other, "/run/secrets/db")[0] != 0  # a service that does not name it cannot read it

        # an upgrade with a changed file: the new content in every replica
        (project / "conf" / "app.conf").write_text("answer = 43\n")
        server.cli("up", "-f", str(project / "docker-compose.yml"), "-s", "files", "--upgrade", "--batch-size", "2")
        wait_until(
            "the new content in every replica",
            lambda: (
                all(_read(r, "/etc/app.conf") == (0, "answer = 43\n") for r in _running(engines, "reader"))
                and len(_running(engines, "reader")) == 2
            ),
            timeout=120,
        )
    finally:
        for engine in engines:
            engine.close()

    with server.client() as client:
        stacks = client.request("GET", "/v1/stacks")
        secrets = client.request("GET", "/v1/environments/default/secrets")
    for text in (server.cli("ps", "-a", "--format", "json", "files").stdout, json.dumps([stacks, secrets])):
        assert VALUE not in text
    logs = [server.data_dir / "server.log", *server.data_dir.glob("hosts/*/agent.log")]
    logs += list(server.data_dir.glob("hosts/*/dockerd.log"))
    assert len(logs) >= 3
    for path in logs:
        assert VALUE not in path.read_text(errors="replace"), f"the secret is in {path}"
