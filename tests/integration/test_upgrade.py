"""Rolling upgrades end to end on real engines: batches keep the service serving, rollback brings back the very
same containers, confirm removes them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s  # sleep as PID 1 ignores SIGTERM: do not wait Docker's default 10 s per stop
    environment:
      RELEASE: "{release}"
"""
RANCHER = "version: '2'\nservices:\n  web:\n    scale: 4\n"


def _files(tmp_path: Path, release: str) -> list[str]:
    compose = tmp_path / f"docker-compose-{release}.yml"
    compose.write_text(COMPOSE.format(release=release))
    rancher = tmp_path / "rancher-compose.yml"
    rancher.write_text(RANCHER)
    return ["-f", str(compose), "-f", str(rancher)]


def _engines(server: ServerProcess, *hosts: str) -> list[docker.DockerClient]:
    engines = []
    for host in hosts:
        record = server.driver().load(host)
        assert record is not None
        engines.append(docker.DockerClient(base_url=record.docker_host))
    return engines


def _web_containers(engines: list[docker.DockerClient]) -> list[dict[str, Any]]:
    """Every container of shop/web on the hosts' engines (the list API only: no inspect that races removals)."""
    found = []
    for engine in engines:
        found += engine.api.containers(all=True, filters={"label": ["io.corral.stack=shop", "io.corral.service=web"]})
    return found


def _running_ids(engines: list[docker.DockerClient]) -> set[str]:
    return {c["Id"] for c in _web_containers(engines) if c["State"] == "running"}


def _running_if(engines: list[docker.DockerClient], wanted: Callable[[set[str]], bool]) -> set[str] | None:
    ids = _running_ids(engines)
    return ids if wanted(ids) else None


def _service(server: ServerProcess) -> dict[str, Any]:
    with server.client() as client:
        return client.stacks.find_service("default", "shop/web")


def _release_of(engines: list[docker.DockerClient], docker_id: str) -> str:
    for engine in engines:
        try:
            env = engine.api.inspect_container(docker_id)["Config"]["Env"]
        except docker.errors.NotFound:
            continue
        return next(e.split("=", 1)[1] for e in env if e.startswith("RELEASE="))
    raise AssertionError(f"container {docker_id} is on no host")


def _upgrade_sampling(server: ServerProcess, engines: list[docker.DockerClient], *args: str) -> list[int]:
    """Run `corral up ARGS` (an upgrade) while counting the running web containers over and over."""
    result: dict[str, Any] = {}
    upgrade = threading.Thread(target=lambda: result.update(out=server.cli(*args, check=False)))
    upgrade.start()
    samples = []
    while upgrade.is_alive():
        samples.append(len(_running_ids(engines)))
        upgrade.join(0.1)
    out = result["out"]
    assert out.returncode == 0, out.stderr
    return samples


def test_rolling_upgrade_keeps_three_of_four_then_rollback_and_confirm(server: ServerProcess, tmp_path: Path) -> None:
    server.cli_all(*(("hosts", "create", "--driver", "local", name) for name in ("h1", "h2")))
    engines = _engines(server, "h1", "h2")
    server.cli("up", *_files(tmp_path, "1"), "-s", "shop")
    old = wait_until("4 web containers running", lambda: _running_if(engines, lambda ids: len(ids) == 4), 60)
    old_hash = _service(server)["config_hash"]

    upgrade = ("up", *_files(tmp_path, "2"), "-s", "shop", "--upgrade", "--batch-size", "1", "--interval", "300")
    samples = _upgrade_sampling(server, engines, *upgrade)
    assert len(samples) > 10 and min(samples) >= 3, samples
    web = _service(server)
    assert web["state"] == "upgraded", web
    new = _running_ids(engines)
    assert len(new) == 4 and not new & old
    assert {_release_of(engines, i) for i in new} == {"2"}
    retired = [c for c in web["containers"] if c["retired"]]
    assert {c["docker_id"] for c in retired} == old and {c["state"] for c in retired} == {"exited"}

    server.cli("up", "-s", "shop", "--rollback")
    assert _service(server)["state"] == "active"
    back = wait_until("the old containers running", lambda: _running_if(engines, lambda ids: ids == old), 60)
    assert {_release_of(engines, i) for i in back} == {"1"}
    labels = {c["Labels"]["io.corral.config-hash"] for c in _web_containers(engines) if c["Id"] in back}
    assert labels == {old_hash}
    wait_until("the new containers removed", lambda: {c["Id"] for c in _web_containers(engines)} == old, 60)

    samples = _upgrade_sampling(server, engines, *upgrade[:-2], "--interval", "0", "--confirm-upgrade")
    assert min(samples) >= 3, samples
    web = _service(server)
    assert web["state"] == "active" and not any(c["retired"] for c in web["containers"])
    final = wait_until("only the new containers left", lambda: len(c := _web_containers(engines)) == 4 and c, 60)
    assert not {c["Id"] for c in final} & old
    assert {_release_of(engines, c["Id"]) for c in final} == {"2"}
    assert json.loads(server.cli("ps", "shop", "--format", "json").stdout)


def _started_at(engines: list[docker.DockerClient], ids: set[str]) -> dict[str, str]:
    started = {}
    for engine in engines:
        for container in _web_containers([engine]):
            if container["Id"] in ids:
                started[container["Id"]] = engine.api.inspect_container(container["Id"])["State"]["StartedAt"]
    return started


def test_rolling_restart_and_an_upgrade_that_cannot_finish(server: ServerProcess, tmp_path: Path) -> None:
    server.cli_all(*(("hosts", "create", "--driver", "local", name) for name in ("h1", "h2")))
    engines = _engines(server, "h1", "h2")
    server.cli("up", *_files(tmp_path, "1"), "-s", "shop")
    old = wait_until("4 web containers running", lambda: _running_if(engines, lambda ids: len(ids) == 4), 60)

    before = _started_at(engines, old)
    server.cli("restart", "-d", "shop/web", "--batch-size", "1")  # -d: the test samples the engines meanwhile
    samples = []

    def all_restarted() -> bool:
        samples.append(len(_running_ids(engines)))
        now = _started_at(engines, old)
        return len(now) == 4 and all(now[i] != before[i] for i in old) and samples[-1] == 4

    wait_until("every container restarted", all_restarted, 120)
    assert min(samples) >= 3, samples
    wait_until("the restart done", lambda: _service(server)["state"] == "active", 60)  # a change waits for it

    broken = COMPOSE.format(release="3").replace("corral/busybox:latest", "corral/not-there:latest")
    with server.client() as client:
        client.stacks.up(
            "default",
            "shop",
            broken,
            rancher_compose=RANCHER,
            upgrade={"batch_size": 1, "interval_ms": 0, "deadline_seconds": 12},
        )
    web = wait_until("upgrade-error", lambda: (s := _service(server))["state"] == "upgrade-error" and s, 60)
    assert "shop-web-1-u1" in web["reason"] and "not ready within 12 s" in web["reason"], web["reason"]
    assert [c["index"] for c in web["containers"] if c["retired"]] == [1]  # one batch out, no further
    wait_until("the rest serving", lambda: _running_if(engines, lambda ids: len(ids & old) == 3), 60)
    failed = server.cli("up", "-s", "shop", "--confirm-upgrade", check=False)
    assert failed.returncode == 1 and "upgrade-error" in failed.stderr

    server.cli("up", "-s", "shop", "--rollback")
    wait_until("the old containers running", lambda: _running_if(engines, lambda ids: ids == old), 60)
    assert _service(server)["state"] == "active"
