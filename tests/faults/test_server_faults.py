"""Faults of the server and its database while stacks change (issue 14): the server killed (-9) during `up`, during
a rolling upgrade, and five times in a minute while a service is scaled; the database locked and read-only;
concurrent scale calls; a stack removed while it starts. The CLI and the client ride out each fault (their writes
carry an Idempotency-Key, so a retried call is applied once) and every answer shows the caller's own result."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corral.model.errors import CorralError
from tests.faults.conftest import MARKS, Cluster
from tests.faults.monitor import wait_for
from tests.integration.test_outage import LOCKER, _immutable

pytestmark = MARKS


def _restart(cluster: Cluster) -> None:
    cluster.kill_server()
    cluster.server.start()


def _finish(cli: subprocess.Popen[str], what: str) -> None:
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, f"{what} failed ({cli.returncode}): {err}{out[-500:]}"


def _service_id(cluster: Cluster, ref: str) -> str:
    with cluster.client() as client:
        return str(client.stacks.find_service("default", ref)["id"])


def test_server_killed_during_up(cluster: Cluster) -> None:
    cluster.wait_active()
    with cluster.monitor.fault("server kill -9 during up") as window:
        cli = cluster.cli_background("up", "-f", str(cluster.compose("ku", {"a": 6})), "-s", "ku")
        time.sleep(1.5)
        _restart(cluster)
        healed = time.monotonic()
        _finish(cli, "corral up across a server restart")
        cluster.monitor.converged(window, {("ku", "a"): 6}, since=healed)
        cluster.monitor.final(window, ["ku"])
    cluster.remove_stack("ku")


def test_server_killed_during_a_rolling_upgrade(cluster: Cluster) -> None:
    cluster.wait_active()
    cluster.up("ru", {"a": 4})
    with cluster.monitor.fault("server kill -9 during a rolling upgrade") as window:
        cluster.monitor.converged(window, {("ru", "a"): 4})
        compose = cluster.compose("ru", {"a": 4}, command="sleep 200000")
        cli = cluster.cli_background(
            "up", "-u", "--batch-size", "1", "--interval", "1000", "-f", str(compose), "-s", "ru"
        )
        time.sleep(3)
        _restart(cluster)
        healed = time.monotonic()
        _finish(cli, "corral up -u across a server restart")
        wait_for("ru/a upgraded", lambda: _state(cluster, "ru", "a") == "upgraded", 60)
        cluster.server.cli("up", "-s", "ru", "--confirm-upgrade")
        cluster.monitor.converged(window, {("ru", "a"): 4}, since=healed)
        cluster.monitor.final(window, ["ru"])
        with cluster.client() as client:
            containers = client.stacks.containers("default", "ru")
        assert containers and all(c["up_to_date"] for c in containers), containers
    cluster.remove_stack("ru")


def _state(cluster: Cluster, stack: str, service: str) -> str:
    with cluster.client() as client:
        return str(client.stacks.find_service("default", f"{stack}/{service}")["state"])


class Scaler(threading.Thread):
    """Scales one service over and over through a client that rides out restarts; keeps every answer."""

    def __init__(self, cluster: Cluster, service_id: str, values: list[int]) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.service_id = service_id
        self.values = values
        self.acknowledged: list[int] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with self.cluster.client(retry_seconds=60) as client:
            n = 0
            while not self.halt.is_set():
                value = self.values[n % len(self.values)]
                n += 1
                try:
                    answer = client.stacks.scale(self.service_id, value)
                except CorralError as exc:
                    self.errors.append(f"scale {value}: {exc.status} {exc.message}")
                    continue
                if answer["scale"] != value:
                    self.errors.append(f"scale {value} answered scale {answer['scale']} (not the caller's own)")
                self.acknowledged.append(value)
                self.halt.wait(0.7)


@contextmanager
def _scaling(cluster: Cluster, ref: str, values: list[int]) -> Iterator[Scaler]:
    scaler = Scaler(cluster, _service_id(cluster, ref), values)
    scaler.start()
    try:
        yield scaler
    finally:
        scaler.halt.set()
        scaler.join(90)
    assert not scaler.errors, scaler.errors
    assert scaler.acknowledged


def test_server_killed_five_times_in_a_minute_while_scaling(cluster: Cluster) -> None:
    cluster.wait_active()
    cluster.up("k5", {"a": 3})
    with cluster.monitor.fault("server kill -9 x5 in a minute while scaling") as window:
        kills: list[float] = []
        with _scaling(cluster, "k5/a", [5, 2, 6, 3, 4]) as scaler:
            for _ in range(5):
                time.sleep(2)
                kills.append(time.monotonic())
                _restart(cluster)
            time.sleep(1)
        assert kills[-1] - kills[0] < 60, f"five kills took {kills[-1] - kills[0]:.0f} s"
        healed = time.monotonic()
        cluster.monitor.converged(window, {("k5", "a"): scaler.acknowledged[-1]}, since=healed)
        cluster.monitor.final(window, ["k5"])
    cluster.remove_stack("k5")


def test_database_locked_then_read_only(cluster: Cluster) -> None:
    cluster.wait_active()
    cluster.up("db", {"a": 2})
    database = cluster.server.data_dir / "corral.db"
    with cluster.monitor.fault("database locked 8 s, then read-only 6 s") as window:
        cluster.monitor.converged(window, {("db", "a"): 2})
        locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(database), "8"], stdout=subprocess.PIPE, text=True)
        try:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
            with _scaling(cluster, "db/a", [3, 4]) as scaler:
                time.sleep(3)
            assert locker.wait(timeout=20) == 0
        finally:
            if locker.poll() is None:
                locker.kill()
        files = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
        with _scaling(cluster, "db/a", [5, 3]) as scaler, _immutable(files):
            time.sleep(6)
        healed = time.monotonic()
        cluster.monitor.converged(window, {("db", "a"): scaler.acknowledged[-1]}, since=healed)
        cluster.monitor.final(window, ["db"])
    assert "internal error" not in cluster.server.log()
    cluster.remove_stack("db")


def test_concurrent_scale_calls(cluster: Cluster) -> None:
    cluster.wait_active()
    cluster.up("cs", {"a": 1})
    service_id = _service_id(cluster, "cs/a")
    answers: dict[int, Any] = {}

    def scale(value: int) -> None:
        with cluster.client() as client:
            answers[value] = client.stacks.scale(service_id, value)["scale"]

    with cluster.monitor.fault("8 concurrent scale calls") as window:
        threads = [threading.Thread(target=scale, args=(value,)) for value in range(2, 10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == {value: value for value in range(2, 10)}  # each caller sees what it set
        final = _scale_of(cluster, "cs/a")
        assert final in answers
        cluster.monitor.converged(window, {("cs", "a"): final})
        cluster.monitor.final(window, ["cs"])
    cluster.remove_stack("cs")


def _scale_of(cluster: Cluster, ref: str) -> int:
    with cluster.client() as client:
        return int(client.stacks.find_service("default", ref)["scale"])


def test_a_stack_removed_while_it_starts(cluster: Cluster) -> None:
    cluster.wait_active()
    with cluster.monitor.fault("stack removed while starting") as window:
        cluster.up("rs", {"a": 6, "b": 3})
        time.sleep(0.5)
        cluster.server.cli("rm", "rs")
        began = time.monotonic()
        wait_for(
            "no container of rs on any engine",
            lambda: not any(key[0] == "rs" for key in cluster.monitor.running()),
            60,
        )
        wait_for(
            "rs gone from the API", lambda: not [s for s in cluster.monitor.api("services") if s["stack"] == "rs"], 30
        )
        # I5: not even a stopped container of it stays behind (the agents remove what they were still creating)
        wait_for("no container of rs left, running or not", lambda: not _left(cluster, "rs"), 30)
        window.recovery = time.monotonic() - began


def _left(cluster: Cluster, stack: str) -> list[str]:
    return [
        f"{c['Names'][0]}@{host} ({c['State']})"
        for host in cluster.monitor.hosts
        for c in cluster.monitor.engine(host).api.containers(all=True, filters={"label": f"io.corral.stack={stack}"})
    ]
