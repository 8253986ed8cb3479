"""P6 (not a test): SQL statements the server sends per container start, and per second while nothing changes.

Why measured this way: the real `corral server` process (SQLite store, real local hosts and agents) counts every
statement with SQLAlchemy's `before_cursor_execute` event (bench/sqlhook/sitecustomize.py, loaded only into the
server through PYTHONPATH); counts are read before the stack is submitted, once all its containers run, and after an
idle window. The statements most sent are listed, grouped by text, to show where the work goes. Target: <= 10 per
container start (Rancher 1.x made thousands).

Run: .venv/bin/python bench/sql_per_start.py [--containers 30] [--hosts 2] [--idle 10] [--top 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cluster import REPO, TEST_IMAGE, BenchCluster, emit, wait_until

TARGET = 10.0
HOOK_DIR = REPO / "bench" / "sqlhook"


def compose(containers: int) -> tuple[str, str]:
    docker_compose = f"""version: '2'
services:
  app:
    image: {TEST_IMAGE}
    command: [sleep, '3600']
    stop_grace_period: 1s
"""
    return docker_compose, f"version: '2'\nservices:\n  app:\n    scale: {containers}\n"


class StatementCounts:
    """Asks the server process for its counts (SIGUSR2) and waits for the file it writes."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid = pid
        self.path = path

    def read(self) -> Counter[str]:
        self.path.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGUSR2)
        wait_until("the server's statement counts", self.path.exists, timeout=10, interval=0.02)
        return Counter(json.loads(self.path.read_text()))


def measure(containers: int, hosts: int, idle: float, top: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-p6-"))
    try:
        return _measure(workdir / "counts.json", containers, hosts, idle, top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(out: Path, containers: int, hosts: int, idle: float, top: int) -> dict[str, Any]:
    pythonpath = os.pathsep.join(p for p in (str(HOOK_DIR), os.environ.get("PYTHONPATH", "")) if p)
    with BenchCluster("P6", PYTHONPATH=pythonpath, CORRAL_BENCH_SQL_COUNTS=str(out)) as cluster:
        names = [f"q{i}" for i in range(1, hosts + 1)]
        cluster.create_hosts(*names)
        assert cluster.server.process is not None
        counts = StatementCounts(cluster.server.process.pid, out)

        # this benchmark's own polling (GET /v1/containers) is not container-start work: its cost is subtracted
        def running() -> int:  # all of the environment's: the stack does not exist before the submit
            return sum(1 for c in cluster.api().stacks.containers("default") if c["state"] == "running")

        probe = counts.read()
        running()
        poll_cost = counts.read() - probe
        polls = 0

        def all_running() -> bool:
            nonlocal polls
            polls += 1
            return running() >= containers

        before = counts.read()
        cluster.up("sql", *compose(containers))
        wait_until("all containers running", all_running, timeout=300, interval=0.5)
        deployed = counts.read()
        started_idle = time.monotonic()
        time.sleep(idle)
        after_idle = counts.read()
        idle_seconds = time.monotonic() - started_idle
    deploy = deployed - before
    deploy.subtract({text: n * polls for text, n in poll_cost.items()})
    deploy = +deploy
    quiet = after_idle - deployed
    per_start = deploy.total() / containers
    return {
        "benchmark": "P6",
        "title": f"SQL statements per container start ({containers} containers on {hosts} local hosts)",
        "figure": round(per_start, 2),
        "unit": "statements/container",
        "target": TARGET,
        "target_text": f"<= {TARGET:g} per container start",
        "met": per_start <= TARGET,
        "peers": {},
        "ratios": {},
        "statements": deploy.total(),
        "poll_statements_subtracted": poll_cost.total() * polls,
        "containers": containers,
        "idle_statements_per_second": round(quiet.total() / idle_seconds, 2),
        "top_statements": [[n, text[:160]] for text, n in deploy.most_common(top)],
        "top_idle_statements": [[n, text[:160]] for text, n in quiet.most_common(top)],
    }


def human(result: dict[str, Any]) -> list[str]:
    lines = [
        f"P6 {result['title']}: {result['figure']} per start ({result['statements']} statements); "
        f"idle {result['idle_statements_per_second']} statements/s",
        f"  target {result['target_text']}: {'met' if result['met'] else 'NOT met'}",
        "  most sent while deploying:",
    ]
    lines += [f"    {n:6d}  {text}" for n, text in result["top_statements"]]
    lines.append("  most sent while idle:")
    lines += [f"    {n:6d}  {text}" for n, text in result["top_idle_statements"]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=30)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--top", type=int, default=8, help="how many statement texts to list")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/sql_per_start.py needs root (local hosts are network namespaces with their own dockerd)")
    emit(measure(args.containers, args.hosts, args.idle, args.top), args.json, human)


if __name__ == "__main__":
    main()
