"""The CLI's state-changing verbs wait until the engines show the change (issue 18), checked on the engine itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess
from tests.integration.test_stacks import _containers, _create_hosts, _engine, _write

pytestmark = pytest.mark.integration

APP = """
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: httpd -f -p 8080 -h /www
    stop_grace_period: 1s
    ports: ["18080:8080"]
    environment:
      GREETING: hello
"""


def _web(server: ServerProcess) -> list[dict]:
    return [c for c in _containers(server, "waits") if c["service"] == "web"]


def test_verbs_return_once_the_engine_shows_the_change(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "w1")
    engine = _engine(server, "w1")
    compose = _write(tmp_path, "docker-compose.yml", APP)
    server.cli("up", "-f", str(compose), "-s", "waits")
    (first,) = _web(server)
    assert engine.api.inspect_container(first["docker_id"])["State"]["Running"]

    # `up` of a changed service returns only after the new container runs
    compose.write_text(APP.replace("GREETING: hello", "GREETING: bonjour"))
    result = server.cli("up", "-f", str(compose), "-s", "waits")
    assert "running" in result.stdout
    (web,) = _web(server)
    assert web["docker_id"] != first["docker_id"] and web["state"] == "running"
    inspected = engine.api.inspect_container(web["docker_id"])
    assert inspected["State"]["Running"] and "GREETING=bonjour" in inspected["Config"]["Env"]

    # `stop` returns after the engine reports the container exited; `start` after it runs again
    server.cli("stop", "waits/web")
    assert not engine.api.inspect_container(web["docker_id"])["State"]["Running"]
    assert [c["state"] for c in _web(server)] == ["exited"]
    server.cli("start", "waits")  # a whole stack
    assert engine.api.inspect_container(web["docker_id"])["State"]["Running"]
    started = engine.api.inspect_container(web["docker_id"])["State"]["StartedAt"]
    server.cli("restart", "waits-web-1")
    state = engine.api.inspect_container(web["docker_id"])["State"]
    assert state["Running"] and state["StartedAt"] != started

    # `-d` returns at once; the exit code of a scale no host can fully take is 1, with one grouped reason
    server.cli("stop", "-d", "waits/web")
    server.cli("start", "waits/web")
    scaled = server.cli("scale", "waits/web=4", "--timeout", "40", check=False)
    assert scaled.returncode == 1, scaled.stdout + scaled.stderr
    assert "#2-#4: port 18080/tcp is taken on the only active host" in scaled.stderr, scaled.stderr
    table = server.cli("ps", "waits").stdout
    for name in ("waits-web-2", "waits-web-3", "waits-web-4"):
        line = next(line for line in table.splitlines() if name in line)
        assert "unplaced" in line and "port 18080/tcp is taken" in line, table
    service = json.loads(server.cli("inspect", "waits/web").stdout)
    assert service["unplaced"] == [{"indexes": [2, 3, 4], "reason": service["unplaced"][0]["reason"]}]
    assert server.cli("ps", "-q", "waits").stdout.split() == [web["id"]]
    engine.close()
