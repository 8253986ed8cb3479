"""Never two running containers for one (service, index) on real engines (issue 14, item 1): the reproductions of
the issue with an old container that is slow to stop (it ignores SIGTERM; 8 s stop timeout), while a sampler reads
every host's engine several times a second."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
version: '2'
services:
  a:
    image: corral/busybox:latest
    command: ["sh", "-c", "trap '' TERM; sleep 100000"]
    stop_grace_period: 8s
    environment:
      RELEASE: "{release}"
"""
HOSTS = ("h1", "h2", "h3")


class Sampler(threading.Thread):
    """Reads every engine (docker ps) about five times a second; records each moment a (service, index) ran on
    more than one container."""

    def __init__(self, engines: dict[str, docker.DockerClient]) -> None:
        super().__init__(daemon=True)
        self.engines = engines
        self.samples = 0
        self.violations: list[str] = []
        self.halt = threading.Event()

    def running(self) -> dict[tuple[str, str], list[str]]:
        found: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for host, engine in self.engines.items():
            for c in engine.api.containers(filters={"label": "io.corral.stack=r", "status": "running"}):
                labels = c["Labels"]
                key = (labels["io.corral.service"], labels["io.corral.service.index"])
                found[key].append(f"{c['Names'][0].lstrip('/')}@{host}")
        return found

    def run(self) -> None:
        while not self.halt.is_set():
            for key, where in self.running().items():
                if len(where) > 1:
                    self.violations.append(f"{time.strftime('%H:%M:%S')} {key}: {sorted(where)}")
            self.samples += 1
            self.halt.wait(0.2)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(5)


def _up(server: ServerProcess, tmp_path: Path, release: str, *extra: str) -> None:
    compose = tmp_path / f"docker-compose-{release}.yml"
    compose.write_text(COMPOSE.format(release=release))
    rancher = tmp_path / "rancher-compose.yml"
    rancher.write_text("version: '2'\nservices:\n  a:\n    scale: 2\n")
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "r", *extra)


def _host_of(sampler: Sampler, index: int) -> str:
    where = sampler.running()[("a", str(index))]
    assert len(where) == 1, where
    return where[0].rsplit("@", 1)[1]


def _service(server: ServerProcess) -> dict[str, Any]:
    with server.client() as client:
        return client.stacks.find_service("default", "r/a")


def test_an_index_never_runs_twice_through_an_upgrade_and_a_scale_down_and_up(
    server: ServerProcess, tmp_path: Path
) -> None:
    for name in HOSTS:
        server.cli("hosts", "create", "--driver", "local", name)
    engines = {}
    for name in HOSTS:
        record = server.driver().load(name)
        assert record is not None
        engines[name] = docker.DockerClient(base_url=record.docker_host)
    _up(server, tmp_path, "1")
    sampler = Sampler(engines)
    wait_until("r-a-1 and r-a-2 running", lambda: len(sampler.running()) == 2, 60)

    with sampler:
        # 1. a stop-first upgrade whose replacement of index 1 must go to another host
        first = _host_of(sampler, 1)
        server.cli("hosts", "deactivate", first)
        _up(server, tmp_path, "2", "-u", "--batch-size", "1", "--interval", "2000")
        wait_until("upgraded", lambda: _service(server)["state"] == "upgraded", 90)
        assert _host_of(sampler, 1) != first
        assert not sampler.violations, sampler.violations
        server.cli("up", "-s", "r", "--confirm-upgrade")
        server.cli("hosts", "activate", first)

        # 2. an index freed by a scale-down and taken again before its old container is gone
        server.cli("scale", "r/a=3")
        wait_until("r-a-3 running", lambda: ("a", "3") in sampler.running(), 60)
        third = _host_of(sampler, 3)
        server.cli("hosts", "deactivate", third)
        server.cli("scale", "r/a=2")
        wait_until(  # else one pass may see both scales and keep r-a-3 where it runs
            "r-a-3 retired",
            lambda: all(c["desired"] == "stopped" for c in _service(server)["containers"] if c["index"] == 3),
            60,
        )
        server.cli("scale", "-d", "r/a=3")  # -d: the test watches the index wait for its old container
        web = wait_until(
            "r-a-3 waiting for its old container",
            lambda: "waiting for r-a-3" in (s := _service(server))["reason"] and s,
            30,
        )
        assert f"on {third} to stop" in web["reason"], web["reason"]
        wait_until(
            "r-a-3 running elsewhere",
            lambda: sampler.running().get(("a", "3"), [""])[0].split("@")[-1] not in ("", third),
            60,
        )

    print(f"engine samples: {sampler.samples}, violations: {len(sampler.violations)}")
    assert sampler.samples > 20
    assert not sampler.violations, sampler.violations
