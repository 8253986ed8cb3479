"""N1 (not a test): the cost of the encrypted overlay: TCP throughput and ping latency between two containers on
two hosts, plain VXLAN vs VXLAN inside WireGuard, in the same run.

Why measured this way: the figure the operator cares about is what encryption takes from container traffic, on
the same machine and load. One server, two environments: `default` (encrypted, the default) and `plain`
(`encryption: false`), two local hosts each, a global web service whose containers serve a file of zeros. From
the container on the first host, `wget` fetches the file from the one on the second host (`time` inside the
container, best of `--runs`), and `ping` measures the round trip. Reported: encrypted throughput as a ratio to
plain (target >= 0.5x with the userspace wireguard-go), both throughputs and both latencies. On one machine the
plain path never leaves the kernel, so this is the hardest case for the userspace tunnel.

Run: .venv/bin/python bench/overlay_crypto.py [--megabytes 100] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import docker
from cluster import TEST_IMAGE, BenchCluster, emit, wait_until

TARGET_RATIO = 0.5


def compose(megabytes: int) -> str:
    return f"""version: '2'
services:
  web:
    image: {TEST_IMAGE}
    command: ["sh", "-c", "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count={megabytes} &&
      exec httpd -f -p 80 -h /www"]
    labels:
      io.rancher.scheduler.global: 'true'
"""


def _seconds(text: str) -> float:
    """busybox `time`: "real\t0m 1.23s"."""
    found = re.search(r"real\s+(\d+)m\s*([\d.]+)s", text)
    if found is None:
        raise RuntimeError(f"no timing in {text!r}")
    return int(found.group(1)) * 60 + float(found.group(2))


def measure_pair(cluster: BenchCluster, env: str, hosts: tuple[str, str], megabytes: int, runs: int) -> dict[str, Any]:
    api = cluster.api()
    for name in hosts:
        api.create_host(env, name)
    api.stacks.up(env, "tp", compose(megabytes))

    def webs() -> dict[str, dict[str, Any]] | None:
        running = [c for c in api.stacks.containers(env, "tp") if c["state"] == "running" and c.get("ip")]
        by_host = {c["host"]: c for c in running}
        return by_host if len(by_host) == 2 else None

    found: dict[str, dict[str, Any]] = wait_until(f"a web on each host of {env}", webs, timeout=300, interval=0.5)
    source, target = found[hosts[0]], found[hosts[1]]
    engine = docker.DockerClient(base_url=cluster.record(hosts[0]).docker_host)
    container = engine.containers.get(source["docker_id"])
    url = f"http://{target['ip']}/big"

    def fetch() -> str:
        code, output = container.exec_run(["sh", "-c", f"exec 2>&1; time wget -q -O /dev/null {url}"])
        return output.decode() if code == 0 else ""

    wait_until(f"the file is served over the {env} overlay", lambda: "real" in fetch(), timeout=120, interval=1)
    best = min(_seconds(fetch()) for _ in range(runs))
    code, output = container.exec_run(["ping", "-c", "20", "-i", "0.2", target["ip"]])
    latency = re.search(r"= [\d.]+/([\d.]+)/", output.decode())
    engine.close()
    return {
        "mbit_s": round(megabytes * 8 * 1.048576 / max(best, 0.01), 1),
        "seconds": best,
        "ping_avg_ms": float(latency.group(1)) if code == 0 and latency else None,
    }


def measure(megabytes: int, runs: int) -> dict[str, Any]:
    with BenchCluster("N1") as cluster:
        cluster.api().create_environment("plain", network={"encryption": False})
        plain = measure_pair(cluster, "plain", ("p1", "p2"), megabytes, runs)
        encrypted = measure_pair(cluster, "default", ("e1", "e2"), megabytes, runs)
    ratio = round(encrypted["mbit_s"] / plain["mbit_s"], 3)
    return {
        "benchmark": "N1",
        "title": f"encrypted overlay throughput vs plain VXLAN ({megabytes} MB over HTTP, best of {runs})",
        "figure": ratio,
        "unit": "x plain",
        "target": TARGET_RATIO,
        "target_text": f">= {TARGET_RATIO:g}x plain VXLAN",
        "met": ratio >= TARGET_RATIO,
        "peers": {"plain VXLAN": plain},
        "ratios": {"plain VXLAN": ratio},
        "encrypted": encrypted,
        "plain": plain,
    }


def human(result: dict[str, Any]) -> list[str]:
    e, p = result["encrypted"], result["plain"]
    return [
        f"N1 {result['title']}: {result['figure']}x",
        f"  encrypted (WireGuard): {e['mbit_s']} Mbit/s, ping {e['ping_avg_ms']} ms",
        f"  plain VXLAN:           {p['mbit_s']} Mbit/s, ping {p['ping_avg_ms']} ms",
        f"  target {result['target_text']}: {'met' if result['met'] else 'NOT met'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/overlay_crypto.py needs root (local hosts are network namespaces with their own dockerd)")
    emit(measure(args.megabytes, args.runs), args.json, human)


if __name__ == "__main__":
    main()
