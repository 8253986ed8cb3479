"""The fault suite's cluster: one real server (short grace period) with three local netns hosts, shared by every
fault of the session (each fault uses its own stacks), and the invariant monitor running throughout.

Why shared: a server with three hosts takes tens of seconds to build on a 2-core machine; the faults heal, and the
monitor checks after each that the cluster converged, so the next fault starts from a healthy cluster. Every test
here is marked `faults` (`pytest -m "not faults"` skips the tier; `make faults` runs only it).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corral.client import CorralClient
from corral.model.errors import CorralError
from tests.faults.monitor import Monitor, wait_for
from tests.integration.conftest import prerequisites  # noqa: F401 - the shared fixture
from tests.integration.servers import ServerProcess

HOSTS = ["h1", "h2", "h3"]
GRACE_SECONDS = 6
IMAGE = "corral/busybox:latest"


MARKS = [pytest.mark.faults, pytest.mark.integration]  # every module's `pytestmark`


@dataclass
class Cluster:
    server: ServerProcess
    monitor: Monitor
    work: Path

    def client(self, retry_seconds: float = 60.0) -> CorralClient:
        s = self.server
        return CorralClient(s.url, s.access_key, s.secret_key, ca=s.ca_file, retry_seconds=retry_seconds)

    def compose(self, stack: str, services: dict[str, int], command: str = "sleep 100000", **extra: str) -> Path:
        """A compose file of `sleep` services at the given scales (rancher-compose style `scale:`)."""
        text = "version: '2'\nservices:\n"
        for name, scale in services.items():
            text += f"  {name}:\n    image: {IMAGE}\n    command: {command}\n    scale: {scale}\n"
            text += "    stop_grace_period: 1s\n"  # `sleep` as pid 1 ignores SIGTERM: no 10 s per stop
            for key, value in extra.items():
                text += f"    {key}: {value}\n"
        path = self.work / f"{stack}-{time.monotonic_ns()}.yml"
        path.write_text(text)
        return path

    def up(self, stack: str, services: dict[str, int], *args: str, **extra: str) -> None:
        self.server.cli("up", "-d", "-f", str(self.compose(stack, services, **extra)), "-s", stack, *args)

    def cli_background(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "corral", *args],
            env=self.server.cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill_server(self) -> None:
        """kill -9: no shutdown hook runs; the agents (own processes) stay."""
        process = self.server.process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def record(self, host: str) -> Any:
        record = self.server.driver().load(host)
        assert record is not None, host
        return record

    def host_state(self, host: str) -> str:
        with self.client(retry_seconds=0) as client:
            return str(next(h["state"] for h in client.list_hosts() if h["name"] == host))

    def all_active(self) -> bool:
        with self.client(retry_seconds=0) as client:
            return all(h["state"] == "active" for h in client.list_hosts())

    def wait_active(self, timeout: float = 60) -> None:
        try:
            wait_for("every host active", lambda: self._safe(self.all_active), timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """What a failed wait needs to be understood: is the server alive, what does it say of its hosts, the stacks of
        its threads (faulthandler on SIGUSR1), and the ends of its and the agents' logs."""
        process = self.server.process
        lines = [f"server process: {'gone' if process is None else process.poll() or 'alive'}"]
        try:
            with self.client(retry_seconds=0) as client:
                lines += [f"host {h['name']}: {h['state']} {h.get('reason') or ''}" for h in client.list_hosts()]
        except CorralError as exc:
            lines.append(f"list hosts: {exc}")
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGUSR1)
            time.sleep(1)
        lines.append("--- server.log ---")
        server_log = self.server.data_dir / "server.log"
        lines += server_log.read_text(errors="replace").splitlines()[-300:]
        for log_file in sorted((self.server.data_dir / "hosts").glob("*/agent.log")):
            lines.append(f"--- {log_file.parent.name}/agent.log ---")
            lines += log_file.read_text(errors="replace").splitlines()[-30:]
        return "\n".join(lines)

    def remove_stack(self, stack: str) -> None:
        with contextlib.suppress(CorralError):
            self.server.cli("rm", stack, check=False)

    @staticmethod
    def _safe(check: Any) -> Any:
        try:
            return check()
        except CorralError:
            return False


@pytest.fixture(scope="session")
def cluster(prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # noqa: F811
    root = tmp_path_factory.mktemp("faults")
    server = ServerProcess(
        root / "data",
        CORRAL_HOST_GRACE_SECONDS=str(GRACE_SECONDS),
        CORRAL_LOCAL_SUPERVISE_SECONDS="2",  # dead agents and dockerds come back as under an init system
    )
    server.data_dir.mkdir()
    server.start()
    monitor: Monitor | None = None
    try:
        for name in HOSTS:
            server.cli("hosts", "create", "--driver", "local", name)
        monitor = Monitor(server, HOSTS)
        monitor.start()
        yield Cluster(server, monitor, root)
    finally:
        if monitor is not None:
            monitor.stop()
            print("\n[faults] " + "; ".join(f"{w.name}: {len(w.violations)} violations" for w in monitor.windows))
        server.teardown()
