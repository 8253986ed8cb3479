"""No head-of-line blocking in the agent (issue 17 item 10): a stack whose image pull hangs (a registry that
accepts the connection and never answers) does not delay another stack's containers on the same host, and the
waiting containers say what they wait for.

The silent registry is a socket on the test bridge's gateway (the hosts reach it there) that accepts and never
sends a byte. The delay of the quick stack is measured from the engine's own start time of its container, against
the same figure for a stack started on the idle host just before (so the machine's load cancels out).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import TEST_IMAGE
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def silent_registry(address: str) -> Iterator[str]:
    """A TCP listener on address:PORT that accepts every connection and never answers; yields "address:port"."""
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{address}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def _compose(tmp_path: Path, name: str, image: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(f"services:\n  app:\n    image: {image}\n    command: [sleep, '3600']\n")
    return path


def _containers(server: ServerProcess, stack: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(server.cli("ps", "-a", "--format", "json", stack).stdout)
    return result


def _started_after(client: docker.DockerClient, stack: str, since: float) -> float:
    """Seconds from `since` (epoch) until the engine started the stack's first container (waits for it)."""

    def started() -> float | None:
        for container in client.containers.list(filters={"label": f"io.corral.stack={stack}"}):
            stamp = container.attrs["State"]["StartedAt"]
            if container.status == "running" and not stamp.startswith("0001-"):
                return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
        return None

    return wait_until(f"stack {stack} to run", started, timeout=120) - since


def test_a_hanging_pull_does_not_delay_another_stack_and_both_waiters_say_why(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("hosts", "create", "--driver", "local", "h1")
    record = server.driver().load("h1")
    assert record is not None
    client = docker.DockerClient(base_url=record.docker_host, timeout=60)
    gateway = str(next(ipaddress.IPv4Network(server.env["CORRAL_LOCAL_SUBNET"]).hosts()))
    try:
        since = time.time()
        server.cli("up", "-f", str(_compose(tmp_path, "baseline", TEST_IMAGE)), "-s", "baseline", "-d")
        baseline = _started_after(client, "baseline", since)

        with silent_registry(gateway) as registry:
            for stuck in ("stuck1", "stuck2"):
                image = f"{registry}/{stuck}/app:1"
                server.cli("up", "-f", str(_compose(tmp_path, stuck, image)), "-s", stuck, "-d")
            for stuck in ("stuck1", "stuck2"):
                wait_until(
                    f"{stuck} to say it waits for its image",
                    lambda stuck=stuck: any(  # type: ignore[misc]
                        f"waiting for image {registry}/{stuck}/app:1" in c["reason"] for c in _containers(server, stuck)
                    ),
                    timeout=60,
                )
            since = time.time()
            server.cli("up", "-f", str(_compose(tmp_path, "quick", TEST_IMAGE)), "-s", "quick", "-d")
            quick = _started_after(client, "quick", since)
            print(f"start after `up`: baseline {baseline:.2f} s, beside two hanging pulls {quick:.2f} s")
            # a start queued behind the hanging pulls would wait for their timeout; a loaded machine jitters by seconds
            assert quick <= baseline + 5.0, f"delayed by {quick - baseline:.1f} s beside the hanging pulls"
            for stuck in ("stuck1", "stuck2"):  # still waiting, and still saying so
                reasons = [c["reason"] for c in _containers(server, stuck)]
                assert reasons and all("waiting for image" in r for r in reasons), reasons
    finally:
        client.close()
