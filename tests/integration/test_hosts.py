"""Acceptance of the foundation on real engines: local hosts in network namespaces, each with its own dockerd
and agent, registered to a real server process."""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from corral.model.credentials import CREDENTIALS_FILE
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration


def _host(server: ServerProcess, name: str, env: str = "default") -> dict:
    hosts = json.loads(server.cli("hosts", "ls", "--env", env, "--format", "json").stdout)
    return next((h for h in hosts if h["name"] == name), {})


def _state(server: ServerProcess, host_id: str) -> str:
    with server.client() as client:
        return client.get_host(host_id)["state"]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_two_local_hosts_become_active_with_facts_and_leave_nothing_behind(server: ServerProcess) -> None:
    server.cli("env", "create", "edge")
    started = time.monotonic()
    for name in ("alpha", "beta"):
        server.cli("hosts", "create", "--driver", "local", "--env", "edge", "--label", "zone=z1", "--no-wait", name)
    wait_until(
        "both hosts active",
        lambda: all(_host(server, n, "edge").get("state") == "active" for n in ("alpha", "beta")),
        timeout=60,  # a failure bound, not a timing target (the time is printed; bench/ measures it)
    )
    elapsed = time.monotonic() - started
    print(f"two local hosts active {elapsed:.1f} s after `hosts create`")

    subnet = ipaddress.ip_network(server.env["CORRAL_LOCAL_SUBNET"])
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    mem_total = int(meminfo["MemTotal"].split()[0]) * 1024
    engine_version = docker.DockerClient(base_url="unix:///var/run/docker.sock").version()["Version"]
    records = {}
    for name in ("alpha", "beta"):
        host = _host(server, name, "edge")
        facts = host["facts"]
        assert host["labels"] == {"zone": "z1"}
        assert host["arch"] == "x86_64" if platform.machine() == "x86_64" else host["arch"]
        assert ipaddress.ip_address(host["address"]) in subnet
        assert facts["cpus"] == os.cpu_count()
        assert abs(facts["memory_bytes"] - mem_total) < mem_total * 0.05
        assert facts["kernel"] == platform.release()
        assert facts["engine_version"] == engine_version
        assert facts["os"]
        records[name] = server.driver().load(name)
        assert records[name] is not None and _pid_alive(records[name].agent_pid)
        assert _pid_alive(records[name].dockerd_pid)
    table = server.cli("hosts", "ls", "--env", "edge").stdout
    assert "alpha" in table and "beta" in table and "active" in table

    server.cli("hosts", "rm", "--env", "edge", "alpha", "beta")
    assert json.loads(server.cli("hosts", "ls", "--env", "edge", "--format", "json").stdout) == []
    for record in records.values():
        assert not _pid_alive(record.agent_pid)
        assert not _pid_alive(record.dockerd_pid)
        assert record.netns not in _netns()
        assert f"{record.veth}@" not in _links() and f"{record.veth}:" not in _links()
        assert not Path(record.host_dir).exists()
        mounts = Path("/proc/self/mountinfo").read_text()
        assert record.host_dir not in mounts


def test_agent_killed_and_restarted_reconnects_without_touching_containers(server: ServerProcess) -> None:
    server.cli("hosts", "create", "--driver", "local", "gamma")
    host = _host(server, "gamma")
    record = server.driver().load("gamma")
    assert record is not None
    engine = docker.DockerClient(base_url=record.docker_host)
    container = engine.containers.run("corral/busybox:latest", ["sleep", "3600"], detach=True, name="keepme")
    before = engine.api.inspect_container(container.id)["State"]
    wait_until("the agent to report the container", lambda: _host(server, "gamma")["container_count"] == 1, 15)

    os.kill(record.agent_pid, signal.SIGKILL)
    wait_until("reconnecting", lambda: _state(server, host["id"]) == "reconnecting", timeout=10, interval=0.1)
    assert container.id in {c.id for c in engine.containers.list()}

    # The server supervises its local hosts and starts the agent again, as an init system would.
    wait_until("active again", lambda: _state(server, host["id"]) == "active", timeout=20)
    revived = server.driver().load("gamma")
    assert revived is not None and revived.agent_pid != record.agent_pid and _pid_alive(revived.agent_pid)
    assert revived.dockerd_pid == record.dockerd_pid
    after = engine.api.inspect_container(container.id)["State"]
    assert after["Running"] and after["StartedAt"] == before["StartedAt"] and after["Pid"] == before["Pid"]
    assert engine.api.inspect_container(container.id)["RestartCount"] == 0
    assert [c.id for c in engine.containers.list(all=True)] == [container.id]
    engine.close()


def test_a_local_host_whose_dockerd_and_agent_died_is_brought_back(server: ServerProcess) -> None:
    server.cli("hosts", "create", "--driver", "local", "epsilon")
    host = _host(server, "epsilon")
    record = server.driver().load("epsilon")
    assert record is not None
    engine = docker.DockerClient(base_url=record.docker_host)
    engine.containers.run(
        "corral/busybox:latest", ["sleep", "3600"], detach=True, name="always", restart_policy={"Name": "always"}
    )
    engine.close()
    os.kill(record.agent_pid, signal.SIGKILL)
    os.kill(record.dockerd_pid, signal.SIGKILL)
    wait_until("reconnecting", lambda: _state(server, host["id"]) != "active", timeout=10, interval=0.1)

    wait_until("active again", lambda: _state(server, host["id"]) == "active", timeout=40)
    revived = server.driver().load("epsilon")
    assert revived is not None and _pid_alive(revived.dockerd_pid) and revived.dockerd_pid != record.dockerd_pid
    engine = docker.DockerClient(base_url=revived.docker_host)
    wait_until("the restart=always container running again", lambda: engine.containers.list(), timeout=20)
    assert [c.name for c in engine.containers.list()] == ["always"]
    engine.close()


def test_server_stopped_for_30_seconds_agents_come_back_and_nothing_is_lost(server: ServerProcess) -> None:
    server.cli("env", "create", "keep")
    server.cli("hosts", "create", "--driver", "local", "--env", "keep", "--label", "role=db", "delta")
    token = json.loads(server.cli("tokens", "create", "--env", "keep", "--format", "json").stdout)
    host = _host(server, "delta", "keep")
    before = server.client().list_hosts()
    access_key = server.access_key

    server.stop()
    time.sleep(30)
    server.start()

    assert server.access_key == access_key  # the admin key is minted only once
    wait_until("delta active again", lambda: _state(server, host["id"]) == "active", timeout=30)
    with server.client() as client:
        assert {e["name"] for e in client.list_environments()} == {"default", "keep"}
        after = client.list_hosts()
        assert [(h["id"], h["name"], h["labels"]) for h in after] == [(h["id"], h["name"], h["labels"]) for h in before]
        assert [t["id"] for t in client.list_registration_tokens("keep")] == [token["id"]]
    assert "Created the admin API key" not in server.log().split("Corral server listening")[-1]


def _run_agent(server: ServerProcess, token: str, state_dir: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "agent",
            "--url",
            server.url,
            "--token",
            token,
            "--state-dir",
            str(state_dir),
            "--name",
            name,
            "--label",
            "kind=custom",
        ],
        # the machine's own engine: no overlay (Docker network, VXLAN, DNS) may be built in the root namespace
        env={**server.env, "CORRAL_AGENT_OVERLAY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_custom_host_registers_with_a_token_and_a_deleted_token_cannot(server: ServerProcess, tmp_path: Path) -> None:
    token = json.loads(server.cli("tokens", "create", "--format", "json").stdout)
    assert token["command"].startswith(f"corral agent --url {server.url} --token ")

    agent = _run_agent(server, token["token"], tmp_path / "agent1", "custom-1")
    try:
        host = wait_until("custom-1 active", lambda: _host(server, "custom-1").get("state") == "active", timeout=20)
        assert host
        credentials = tmp_path / "agent1" / CREDENTIALS_FILE
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        assert token["token"] not in credentials.read_text()
        assert _host(server, "custom-1")["labels"] == {"kind": "custom"}

        server.cli("tokens", "rm", token["id"])
        refused = _run_agent(server, token["token"], tmp_path / "agent2", "custom-2")
        output, _ = refused.communicate(timeout=30)
        assert refused.returncode == 1
        assert "token" in output.lower()
        assert "custom-2" not in server.cli("hosts", "ls").stdout

        server.cli("hosts", "rm", "custom-1")
        output, _ = agent.communicate(timeout=30)
        assert agent.returncode == 1, output
        assert "removed" in output.lower() or "credentials" in output.lower()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_cli_errors_are_one_line_and_exit_1(server: ServerProcess) -> None:
    for args in (
        ("env", "create", "bad;name"),
        ("env", "rm", "no-such-env"),
        ("hosts", "ls", "--env", "no-such-env"),
        ("hosts", "create", "--label", "novalue", "h1"),
        ("hosts", "rm", "ghost"),
    ):
        result = server.cli(*args, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (args, result.stderr)
    bad_key = server.cli("--secret-key", "wrong", "env", "ls", check=False)
    assert bad_key.returncode == 1 and "invalid API key" in bad_key.stderr


@pytest.mark.parametrize(
    "args",
    [("hosts", "create"), ("hosts", "ls", "--format", "xml"), ("no-such-verb",), ("hosts", "ls", "--bogus")],
)
def test_cli_usage_errors_are_one_line_and_exit_1(args: tuple[str, ...]) -> None:
    result = subprocess.run([sys.executable, "-m", "corral", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
