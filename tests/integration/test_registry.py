"""A private registry end to end: Debian's `docker-registry` with htpasswd auth on the test bridge's gateway
address (plain HTTP; local hosts trust 198.18.0.0/15), an image pushed to it from a host's own engine, a service
pulling it with the environment's credentials, a clear reason with wrong ones, and the password in no log line.

The registry runs in the root namespace bound to the gateway (the hosts reach it there), started and stopped by
PID; its storage and htpasswd file live in the test's tmp dir. No traffic leaves the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import TEST_IMAGE, skip_or_fail
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

USER = "puller"
PASSWORD = "Reg1stry-pa55-Zq7w"
WRONG = "not-the-Reg1stry-pa55"


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_registry(address: str, workdir: Path) -> Iterator[str]:
    """`docker-registry` with htpasswd auth on address:PORT; yields "address:port"; stopped by its PID."""
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        skip_or_fail("docker-registry and htpasswd are not installed (run `make setup`)")
    assert binary is not None and htpasswd is not None
    workdir.mkdir()
    users = subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout
    (workdir / "htpasswd").write_text(users)
    port = _free_port(address)
    config = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
        "auth": {"htpasswd": {"realm": "corral-test", "path": str(workdir / "htpasswd")}},
        "http": {"addr": f"{address}:{port}", "secret": "corral-test-secret"},
    }
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(workdir / "registry.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen([binary, "serve", str(workdir / "config.yml")], stdout=log, stderr=log)
    log.close()
    try:
        wait_until("the registry to listen", lambda: _listening(address, port, process), timeout=20)
        yield f"{address}:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(address: str, port: int, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"docker-registry exited with {process.returncode}")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((address, port)) == 0


def _push_from_host(server: ServerProcess, host: str, reference: str) -> None:
    """Tag the test image on the host's own engine, push it with the right credentials, then drop the tag so that
    the engine has to pull it."""
    record = server.driver().load(host)
    assert record is not None
    client = docker.DockerClient(base_url=record.docker_host, timeout=120)
    try:
        repository, tag = reference.rsplit(":", 1)
        client.images.get(TEST_IMAGE).tag(repository, tag)
        output = client.images.push(
            repository, tag=tag, auth_config={"username": USER, "password": PASSWORD}, stream=True, decode=True
        )
        errors = [line["error"] for line in output if "error" in line]
        assert not errors, f"push failed: {errors}"
        client.images.remove(reference)
        assert not client.images.list(name=repository)
    finally:
        client.close()


def _service_containers(server: ServerProcess, stack: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(server.cli("ps", "-a", "--format", "json", stack).stdout)
    return result


def _compose(tmp_path: Path, name: str, image: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        "version: '2'\n"
        "services:\n"
        "  app:\n"
        f"    image: {image}\n"
        "    command: [sleep, '3600']\n"
        "    labels:\n"
        "      io.rancher.container.pull_image: always\n"
    )
    return path


def test_private_registry_right_credentials_pull_wrong_ones_give_a_reason(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("hosts", "create", "--driver", "local", "h1")
    gateway = str(next(ipaddress.IPv4Network(server.env["CORRAL_LOCAL_SUBNET"]).hosts()))
    with running_registry(gateway, tmp_path / "registry") as registry:
        image = f"{registry}/private/busybox:1"
        _push_from_host(server, "h1", image)

        # without credentials the registry refuses, and the reason says so
        server.cli("up", "-f", str(_compose(tmp_path, "anon", image)), "-s", "anon", "-d")
        wait_until(
            "a reason naming the registry without credentials",
            lambda: any(
                registry in c["reason"] and "authentication failed" in c["reason"]
                for c in _service_containers(server, "anon")
            ),
            timeout=90,
        )

        env = server.cli_env()
        added = subprocess.run(
            [*_corral(), "registries", "add", registry, "--username", USER, "--password-stdin"],
            input=PASSWORD + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert added.stdout.strip().startswith("reg-")
        listing = server.cli("registries", "ls", "--format", "json").stdout
        assert registry in listing and PASSWORD not in listing

        server.cli("up", "-f", str(_compose(tmp_path, "private", image)), "-s", "private")
        running = wait_until(
            "the private image to run",
            lambda: [c for c in _service_containers(server, "private") if c["state"] == "running"],
            timeout=120,
        )
        assert running[0]["image"] == image

        # wrong credentials: a new service cannot pull (pull_image: always), with the registry's reason
        subprocess.run(
            [*_corral(), "registries", "update", registry, "--username", USER, "--password-stdin"],
            input=WRONG + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        server.cli("up", "-f", str(_compose(tmp_path, "wrong", image)), "-s", "wrong", "-d")
        reason = wait_until(
            "a reason for the refused pull",
            lambda: next(
                (c["reason"] for c in _service_containers(server, "wrong") if "authentication" in c["reason"]), ""
            ),
            timeout=90,
        )
        assert registry in reason and USER in reason
        assert "unauthorized" in reason.lower()
        assert not any(c["state"] == "running" for c in _service_containers(server, "wrong"))

    logs = [server.data_dir / "server.log", *server.data_dir.glob("hosts/*/agent.log")]
    logs += list(server.data_dir.glob("hosts/*/dockerd.log"))
    assert len(logs) >= 3
    for path in logs:
        text = path.read_text(errors="replace")
        assert PASSWORD not in text, f"the password is in {path}"
        assert WRONG not in text, f"the wrong password is in {path}"


def _corral() -> list[str]:
    return [sys.executable, "-m", "corral"]
