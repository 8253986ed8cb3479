"""N1 (not a test): the cost of the encrypted overlay: TCP throughput and ping latency between two containers on
two hosts, plain VXLAN vs routed WireGuard, in the same run, and what the userspace tunnel costs in CPU.

Why measured this way: the figure the operator cares about is what encryption takes from container traffic, on
the same machine and load. One server, two environments: `default` (encrypted, the default) and `plain`
(`encryption: false`), two local hosts each, a global service with one container per host. Both paths are what a
user gets by default (MTU, offloads, firewall rules as the agent sets them); nothing is tuned for the benchmark.
The same bulk TCP sender and sink (bench/tcp_stream.py, 1 MiB writes) run in the two containers' network
namespaces for a fixed time, plain and encrypted alternating round by round (so load from other processes falls
on both), the median of `--runs` rounds per path; then `ping` between the same containers. Reported: encrypted
throughput as a ratio to plain (target >= 0.5x with the userspace wireguard-go), both throughputs and latencies,
and the CPU seconds both wireguard-go processes spend per GB carried, with the throughput that cost allows if the
tunnel had every core of the machine to itself (the bound on this machine, whatever the load).

Run: .venv/bin/python bench/overlay_crypto.py [--seconds 5] [--runs 3] [--streams 1] [--json]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
from cluster import TEST_IMAGE, BenchCluster, emit, wait_until

from corral.model.network import wireguard_interface

TARGET_RATIO = 0.5
PORT = 5201
STREAM = Path(__file__).resolve().parent / "tcp_stream.py"
COMPOSE = f"""version: '2'
services:
  web:
    image: {TEST_IMAGE}
    command: ["sleep", "86400"]
    labels:
      io.rancher.scheduler.global: 'true'
"""


class Pair:
    """Two containers of one environment, one per host: the sender's and the sink's namespaces."""

    def __init__(self, cluster: BenchCluster, env: str, hosts: tuple[str, str]) -> None:
        api = cluster.api()
        for name in hosts:
            api.create_host(env, name)
        api.stacks.up(env, "tp", COMPOSE)

        def webs() -> dict[str, dict[str, Any]] | None:
            running = [c for c in api.stacks.containers(env, "tp") if c["state"] == "running" and c.get("ip")]
            by_host = {c["host"]: c for c in running}
            return by_host if len(by_host) == 2 else None

        found: dict[str, dict[str, Any]] = wait_until(f"a container on each host of {env}", webs, timeout=300)
        self.env = env
        self.target_ip = str(found[hosts[1]]["ip"])
        self.pids = [self._pid(cluster, name, found[name]["docker_id"]) for name in hosts]
        self.source = (cluster.record(hosts[0]).docker_host, str(found[hosts[0]]["docker_id"]))
        ids = {h["name"]: h["id"] for h in api.list_hosts(env)}
        self.wireguard = [wireguard_interface(ids[name]) for name in hosts]

    @staticmethod
    def _pid(cluster: BenchCluster, host: str, docker_id: str) -> int:
        engine = docker.DockerClient(base_url=cluster.record(host).docker_host)
        try:
            return int(engine.containers.get(docker_id).attrs["State"]["Pid"])
        finally:
            engine.close()

    def run(self, which: int, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", "-n", "-t", str(self.pids[which]), *args]
        return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)

    def ping(self, *args: str) -> tuple[int, str]:
        """busybox `ping` inside the first container."""
        engine = docker.DockerClient(base_url=self.source[0])
        try:
            code, output = engine.containers.get(self.source[1]).exec_run(["ping", *args, self.target_ip])
        finally:
            engine.close()
        return int(code), output.decode()

    def reachable(self) -> bool:
        return self.ping("-c", "1", "-W", "1")[0] == 0

    def ping_ms(self) -> float | None:
        code, output = self.ping("-c", "20", "-i", "0.2")
        found = re.search(r"= [\d.]+/([\d.]+)/", output)
        return float(found.group(1)) if code == 0 and found else None

    def tunnel_cpu(self) -> float:
        """CPU seconds used so far by the wireguard-go processes of both hosts (0 when there are none)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name != "wireguard-go" or argv[1].decode() not in self.wireguard:
                    continue
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError, UnicodeDecodeError):
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def stream(pair: Pair, seconds: float, streams: int) -> dict[str, float]:
    """One timed transfer: Mbit/s delivered, and the tunnel's and the machine's CPU seconds meanwhile."""
    sink = subprocess.Popen(
        ["nsenter", "-n", "-t", str(pair.pids[1]), sys.executable, str(STREAM), "sink", str(PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()  # "listening"
        cpu0, (busy0, all0) = pair.tunnel_cpu(), machine_busy()
        done = pair.run(
            0,
            sys.executable,
            str(STREAM),
            "send",
            pair.target_ip,
            str(PORT),
            str(seconds),
            str(streams),
            timeout=seconds + 60,
        )
        cpu1, (busy1, all1) = pair.tunnel_cpu(), machine_busy()
    finally:
        sink.kill()
        sink.wait()
    if done.returncode != 0:
        raise RuntimeError(f"tcp_stream send in {pair.env} failed: {done.stderr.strip()[-300:]}")
    sent, elapsed = done.stdout.split()
    return {
        "mbit_s": int(sent) * 8 / float(elapsed) / 1e6,
        "gb": int(sent) / 1e9,
        "tunnel_cpu_s": cpu1 - cpu0,
        "busy_share": (busy1 - busy0) / max(all1 - all0, 1e-9),
    }


def summary(rounds: list[dict[str, float]], pair: Pair) -> dict[str, Any]:
    gb = sum(r["gb"] for r in rounds)
    cpu = sum(r["tunnel_cpu_s"] for r in rounds)
    return {
        "mbit_s": round(statistics.median(r["mbit_s"] for r in rounds), 1),
        "rounds_mbit_s": [round(r["mbit_s"], 1) for r in rounds],
        "machine_busy": round(statistics.mean(r["busy_share"] for r in rounds), 3),
        "tunnel_cpu_s_per_gb": round(cpu / gb, 2) if cpu else None,
        "ping_avg_ms": pair.ping_ms(),
    }


def measure(seconds: float, runs: int, streams: int) -> dict[str, Any]:
    with BenchCluster("N1") as cluster:
        cluster.api().create_environment("plain", network={"encryption": False})
        pairs = {"plain": Pair(cluster, "plain", ("p1", "p2")), "encrypted": Pair(cluster, "default", ("e1", "e2"))}
        for name, pair in pairs.items():
            wait_until(f"the {name} overlay carries traffic", pair.reachable, timeout=120, interval=1)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in pairs}
        for _ in range(runs):
            for name, pair in pairs.items():
                rounds[name].append(stream(pair, seconds, streams))
                time.sleep(0.5)
        plain, encrypted = (summary(rounds[name], pairs[name]) for name in ("plain", "encrypted"))
    cores = os.cpu_count() or 1
    per_gb = encrypted["tunnel_cpu_s_per_gb"]
    encrypted["bound_mbit_s"] = round(cores / per_gb * 8000, 1) if per_gb else None
    ratio = round(encrypted["mbit_s"] / plain["mbit_s"], 3)
    return {
        "benchmark": "N1",
        "title": f"encrypted overlay vs plain VXLAN ({streams} TCP stream(s), {seconds:g} s, median of {runs})",
        "figure": ratio,
        "unit": "x plain",
        "target": TARGET_RATIO,
        "target_text": f">= {TARGET_RATIO:g}x plain VXLAN",
        "met": ratio >= TARGET_RATIO,
        "peers": {"plain VXLAN": plain},
        "ratios": {"plain VXLAN": ratio},
        "encrypted": encrypted,
        "plain": plain,
        "cores": cores,
    }


def human(result: dict[str, Any]) -> list[str]:
    e, p = result["encrypted"], result["plain"]
    return [
        f"N1 {result['title']}: {result['figure']}x",
        f"  encrypted (WireGuard): {e['mbit_s']} Mbit/s {e['rounds_mbit_s']}, ping {e['ping_avg_ms']} ms, "
        f"machine busy {e['machine_busy']:.0%}",
        f"  plain VXLAN:           {p['mbit_s']} Mbit/s {p['rounds_mbit_s']}, ping {p['ping_avg_ms']} ms, "
        f"machine busy {p['machine_busy']:.0%}",
        f"  wireguard-go (both hosts): {e['tunnel_cpu_s_per_gb']} CPU s per GB; with all {result['cores']} cores: "
        f"at most {e['bound_mbit_s']} Mbit/s here",
        f"  target {result['target_text']}: {'met' if result['met'] else 'NOT met'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed transfer")
    parser.add_argument("--runs", type=int, default=3, help="rounds (plain then encrypted); the median is reported")
    parser.add_argument("--streams", type=int, default=1, help="parallel TCP connections per transfer")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/overlay_crypto.py needs root (local hosts are network namespaces with their own dockerd)")
    emit(measure(args.seconds, args.runs, args.streams), args.json, human)


if __name__ == "__main__":
    main()
