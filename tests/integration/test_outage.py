"""Outages on a real server with a real local host: the database locked by another process or read-only, and a
host's dockerd killed. Writes answer 503 with Retry-After (never 500), reads answer, the host does not flap, the
agent's reports are applied once the database answers again; a host without its engine turns `engine-down`, its
containers `unknown`, and takes no new container until its engine is back."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import docker
import httpx
import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _wait_running, _write

pytestmark = pytest.mark.integration

IMAGE = "corral/busybox:latest"
LOCK_SECONDS = 15
LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""
LOCKER_UNTIL_TOLD = LOCKER.replace("time.sleep(float(sys.argv[2]))", "sys.stdin.readline()")  # a line or EOF: release


@pytest.fixture
def outage_server(server_with: Any, tmp_path: Path) -> ServerProcess:
    server: ServerProcess = server_with(CORRAL_LOCAL_SUPERVISE_SECONDS="0")  # the test revives the dockerd itself
    server.cli("hosts", "create", "--driver", "local", "h1")
    compose = _write(
        tmp_path,
        "docker-compose.yml",
        f"version: '2'\nservices:\n  app:\n    image: {IMAGE}\n    command: sleep 3600\n",
    )
    server.cli("up", "-f", str(compose), "-s", "o")
    _wait_running(server, "o", "app", 1)
    return server


def _http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        auth=(server.access_key, server.secret_key),
        timeout=30,
        verify=server.ssl_context() or True,
    )


def _host(http: httpx.Client) -> dict[str, Any]:
    hosts = http.get("/v1/hosts").raise_for_status().json()["data"]
    return next(h for h in hosts if h["name"] == "h1")


def _service_id(server: ServerProcess) -> str:
    with server.client() as client:
        return str(client.stacks.find_service("default", "o/app")["id"])


def _write_during_outage(http: httpx.Client, service_id: str, n: int) -> httpx.Response:
    if n % 2:
        return http.post("/v1/environments", json={"name": f"outage-{n}"})
    return http.post(f"/v1/services/{service_id}/scale", json={"scale": 1})


def _assert_outage_answer(response: httpx.Response) -> bool:
    """A write during an outage: success, or 503 saying so with Retry-After. Returns whether it was refused."""
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text)
    if response.status_code != 503:
        return False
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["error"] == "unavailable" and body["message"].startswith("the server's database is unavailable")
    assert "INSERT" not in body["message"] and "UPDATE" not in body["message"]
    return True


@contextlib.contextmanager
def _immutable(paths: list[Path]) -> Iterator[None]:
    """The database files read-only for everyone, root included (ext4's immutable flag); always undone."""
    made: list[Path] = []
    try:
        for path in paths:
            subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
            made.append(path)
        yield
    finally:
        for path in made:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)


def _line_within(stream: IO[str], seconds: float) -> str:
    """The stream's next line, or "" when none came within `seconds`."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else ""


def test_a_locked_then_read_only_database_is_503_and_the_host_does_not_flap(outage_server: ServerProcess) -> None:
    server = outage_server
    database = server.data_dir / "corral.db"
    service_id = _service_id(server)
    record = server.driver().load("h1")
    assert record is not None
    engine = docker.DockerClient(base_url=record.docker_host)
    with _http(server) as http:
        cli: subprocess.Popen[str] | None = None
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER_UNTIL_TOLD, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
            locked_at = time.monotonic()
            # the agent reports a container started out of band while the database is locked
            stray = engine.containers.run(IMAGE, ["sleep", "3600"], detach=True, name="stray")
            # the CLI says so in one line and waits: its write (with an Idempotency-Key) is applied once it can be
            cli = subprocess.Popen(
                [sys.executable, "-m", "corral", "env", "create", "cli-during-lock"],
                env=server.cli_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            refused = n = 0
            while time.monotonic() - locked_at < LOCK_SECONDS - 4:
                n += 1
                refused += _assert_outage_answer(_write_during_outage(http, service_id, n))
                assert http.get("/v1/stacks").status_code == 200  # reads answer
                assert _host(http)["state"] == "active"  # no flap
            assert refused, "no write was refused while the database was locked"
            assert cli is not None and cli.stderr is not None
            # the lock holds until the CLI has said it waits (its start takes seconds on a loaded machine)
            waiting = _line_within(cli.stderr, 60)
            assert locker.stdin is not None
            locker.stdin.close()
            assert locker.wait(timeout=LOCK_SECONDS) == 0
            _, rest = cli.communicate(timeout=60)
            said = waiting + rest
            assert cli.returncode == 0, said
            assert said.count("\n") == 1 and "the server's database is unavailable" in said, said
            names = [e["name"] for e in http.get("/v1/environments").json()["data"]]
            assert names.count("cli-during-lock") == 1
        finally:
            if locker.poll() is None:
                locker.kill()
            if cli is not None and cli.poll() is None:
                cli.kill()
        # the agent's report, kept through the lock, is applied (well before its periodic snapshot, 60 s)
        wait_until(
            "the stray container reported",
            lambda: any(
                c["name"] == "stray" for c in http.get(f"/v1/hosts/{_host(http)['id']}/containers").json()["data"]
            ),
            timeout=15,
        )
        assert _host(http)["state"] == "active"
        stray.remove(force=True)
        assert http.post("/v1/environments", json={"name": "after-lock"}).status_code == 201

        files = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
        with _immutable(files):
            answers = [_write_during_outage(http, service_id, n) for n in range(1, 4)]
            assert all(_assert_outage_answer(a) for a in answers[::2]), [a.text for a in answers]
            assert http.get("/v1/hosts").status_code == 200
            assert _host(http)["state"] == "active"
        wait_until(
            "writes accepted again",
            lambda: http.post("/v1/environments", json={"name": "after-read-only"}).status_code == 201,
            timeout=10,
        )
    engine.close()
    assert "internal error" not in server.log()


def test_a_host_whose_dockerd_died_is_engine_down_until_it_is_back(outage_server: ServerProcess) -> None:
    server = outage_server
    record = server.driver().load("h1")
    assert record is not None and record.dockerd_pid
    with _http(server) as http:
        host_id = _host(http)["id"]
        os.kill(record.dockerd_pid, signal.SIGKILL)
        down = wait_until("h1 engine-down", lambda: (h := _host(http))["state"] == "engine-down" and h, timeout=15)
        assert "docker engine" in down["state_reason"]
        wait_until("its container unknown", lambda: [c["state"] for c in _containers(server, "o")] == ["unknown"], 10)
        service = http.post(f"/v1/services/{_service_id(server)}/scale", json={"scale": 2}).json()
        assert service["running"] == 0
        time.sleep(3)  # passes run every 2 s: none places the new index on the engine-down host
        assert len(_containers(server, "o")) == 1
        with server.client() as client:
            view = client.stacks.find_service("default", "o/app")
        assert view["pending"] == 1 and "engine-down" in view["reason"], view["reason"]

        server.driver().revive("h1", server.agent_command("h1"))
        wait_until("h1 active again", lambda: _host(http)["state"] == "active", timeout=30)
        assert _host(http)["id"] == host_id
        _wait_running(server, "o", "app", 2)
