"""P4 (not a test): resident memory of one idle agent managing 20 containers, `--wait` seconds after all run.

Why measured this way: the agent is the process every host pays for, so its footprint is read from the kernel
(VmRSS in /proc/PID/status, and USS = private clean + dirty pages from smaps_rollup, the memory that would be freed
if it exited) of the real agent the local driver started, after its containers have run a while (caches filled,
heartbeats and metadata/DNS served). Target: <= 40 MB (Rancher 1.x's agent used about 20 MB).

Run: .venv/bin/python bench/agent_rss.py [--containers 20] [--wait 60] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from cluster import TEST_IMAGE, BenchCluster, emit, rss_kib

TARGET_MB = 40.0


def compose(containers: int) -> tuple[str, str]:
    docker_compose = f"""version: '2'
services:
  idle:
    image: {TEST_IMAGE}
    command: [sleep, '3600']
    stop_grace_period: 1s
"""
    return docker_compose, f"version: '2'\nservices:\n  idle:\n    scale: {containers}\n"


def measure(containers: int, wait: float) -> dict[str, Any]:
    with BenchCluster("P4") as cluster:
        cluster.create_hosts("m1")
        agent_pid = cluster.record("m1").agent_pid
        assert agent_pid is not None
        cluster.up("idle", *compose(containers))
        cluster.wait_running("idle", containers, interval=0.5)
        at_running = rss_kib(agent_pid)
        time.sleep(wait)
        idle = rss_kib(agent_pid)
    rss_mb = idle["rss"] / 1024
    return {
        "benchmark": "P4",
        "title": f"idle agent RSS, {containers} containers, {wait:g} s after all run",
        "figure": round(rss_mb, 1),
        "unit": "MB",
        "target": TARGET_MB,
        "target_text": f"<= {TARGET_MB:g} MB",
        "met": rss_mb <= TARGET_MB,
        "peers": {"rancher-1.x-agent": 20.0},
        "ratios": {"rancher-1.x-agent": round(rss_mb / 20.0, 2)},
        "rss_mb": round(rss_mb, 1),
        "uss_mb": round(idle.get("uss", 0) / 1024, 1),
        "rss_mb_when_running": round(at_running["rss"] / 1024, 1),
        "containers": containers,
        "wait_seconds": wait,
    }


def human(result: dict[str, Any]) -> list[str]:
    return [
        f"P4 {result['title']}: RSS {result['rss_mb']} MB, USS {result['uss_mb']} MB "
        f"(RSS {result['rss_mb_when_running']} MB when all had just started)",
        f"  target {result['target_text']}: {'met' if result['met'] else 'NOT met'}; "
        f"Rancher 1.x agent about 20 MB (ratio {result['ratios']['rancher-1.x-agent']})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to idle after all run before measuring")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/agent_rss.py needs root (a local host is a network namespace with its own dockerd)")
    emit(measure(args.containers, args.wait), args.json, human)


if __name__ == "__main__":
    main()
