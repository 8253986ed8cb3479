"""P2 (not a test): seconds from submit to all containers running for 6 services x 10 busybox containers, Corral
against docker-compose v1, Docker Compose v2 and `docker stack deploy`, same run, same machine.

Why these set-ups: Corral spreads the 60 containers over 3 local hosts (netns + own dockerd each), and then runs
them all on one of them (the other two deactivated: Corral's own overhead on the very engine the composes drive);
both composes run on that host's engine (one engine is all they drive); swarm runs on a 3-node swarm made of the same
three engines. Every peer is timed from the moment its command is started to the moment all 60 are seen running,
and its containers are removed before the next one starts. Targets: Corral on 3 hosts <= 0.8x the fastest compose,
and faster than swarm (issue 8); Corral on one host <= 1.0x Compose v2 (issue 15).

Run: .venv/bin/python bench/deploy.py [--services 6] [--per-service 10] [--only corral,compose-v1,...] [--json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster import REPO, TEST_IMAGE, BenchCluster, emit, wait_until

HOSTS = ("d1", "d2", "d3")
PEERS = ("compose-v1", "compose-v2", "swarm")
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
COMPOSE_V1 = "/usr/bin/docker-compose"
COMPOSE_V2 = str(REPO / ".venv" / "bin" / "docker-compose")
SWARM_POOL = "198.19.160.0/19"  # overlay subnets of the swarm (bench range, clear of the hosts' docker0 --bip)


def compose_file(services: int, *, swarm_replicas: int | None = None) -> str:
    lines = ["version: '3.7'" if swarm_replicas else "version: '2'", "services:"]
    for index in range(1, services + 1):
        lines += [
            f"  s{index}:",
            f"    image: {TEST_IMAGE}",
            "    command: [sleep, '3600']",
            "    stop_grace_period: 1s",  # PID-1 sleep ignores SIGTERM
        ]
        if swarm_replicas:
            lines += ["    deploy:", f"      replicas: {swarm_replicas}"]
    return "\n".join(lines) + "\n"


def rancher_file(services: int, scale: int) -> str:
    lines = ["version: '2'", "services:"]
    for index in range(1, services + 1):
        lines += [f"  s{index}:", f"    scale: {scale}"]
    return "\n".join(lines) + "\n"


def docker(docker_host: str, *args: str, check: bool = True) -> str:
    result = subprocess.run(
        [DOCKER, "-H", docker_host, *args], capture_output=True, text=True, timeout=300, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def running_count(docker_host: str, label: str) -> int:
    out = docker(docker_host, "ps", "-q", "--filter", f"label={label}", "--filter", "status=running")
    return len(out.split())


def wait_gone(docker_hosts: list[str], label: str, timeout: float = 180) -> None:
    def gone() -> bool:
        return all(not docker(h, "ps", "-aq", "--filter", f"label={label}").split() for h in docker_hosts)

    wait_until(f"containers labelled {label} removed", gone, timeout=timeout, interval=0.5)


def time_corral_on_one_host(cluster: BenchCluster, services: int, per_service: int) -> float:
    """`time_corral` with every host but the first deactivated (no new container goes there)."""
    others = [cluster.api().find_host("default", name)["id"] for name in HOSTS[1:]]
    for host_id in others:
        cluster.api().host_action(host_id, "deactivate")
    try:
        return time_corral(cluster, services, per_service)
    finally:
        for host_id in others:
            cluster.api().host_action(host_id, "activate")


def time_corral(cluster: BenchCluster, services: int, per_service: int) -> float:
    total = services * per_service
    started = time.monotonic()
    cluster.up("bench", compose_file(services), rancher_file(services, per_service))
    seconds = cluster.wait_running("bench", total) - started
    stack = cluster.api().stacks.find("default", "bench")
    cluster.api().stacks.delete(stack["id"])
    wait_gone([cluster.record(h).docker_host for h in HOSTS], "io.corral.stack=bench")
    return seconds


def time_compose(peer: str, docker_host: str, services: int, per_service: int, workdir: Path) -> float:
    binary = COMPOSE_V1 if peer == "compose-v1" else COMPOSE_V2
    project = "p2" + peer.replace("-", "")
    path = workdir / f"{project}.yml"
    path.write_text(compose_file(services))
    env = {**os.environ, "DOCKER_HOST": docker_host, "COMPOSE_PROJECT_NAME": project}
    scale = [arg for index in range(1, services + 1) for arg in ("--scale", f"s{index}={per_service}")]
    base = [binary, "-f", str(path)]
    label = f"com.docker.compose.project={project}"
    started = time.monotonic()
    subprocess.run([*base, "up", "-d", *scale], env=env, check=True, capture_output=True, timeout=600)
    wait_until(
        "compose containers running",
        lambda: running_count(docker_host, label) >= services * per_service,
        timeout=300,
        interval=0.1,
    )
    seconds = time.monotonic() - started
    subprocess.run([*base, "down", "-t", "1"], env=env, check=True, capture_output=True, timeout=600)
    wait_gone([docker_host], label)
    return seconds


def time_swarm(cluster: BenchCluster, services: int, per_service: int, workdir: Path) -> float:
    records = [cluster.record(h) for h in HOSTS]
    manager, workers = records[0], records[1:]
    docker(
        manager.docker_host,
        "swarm", "init",
        "--advertise-addr", manager.address,
        "--listen-addr", f"{manager.address}:2377",
        "--default-addr-pool", SWARM_POOL,
    )  # fmt: skip
    try:
        token = docker(manager.docker_host, "swarm", "join-token", "-q", "worker").strip()
        for worker in workers:
            docker(
                worker.docker_host,
                "swarm", "join", "--token", token, "--advertise-addr", worker.address, f"{manager.address}:2377",
            )  # fmt: skip
        wait_until(
            "3 swarm nodes ready",
            lambda: docker(manager.docker_host, "node", "ls", "--format", "{{.Status}}").split().count("Ready") == 3,
            timeout=60,
        )
        path = workdir / "stack.yml"
        path.write_text(compose_file(services, swarm_replicas=per_service))
        label = "com.docker.stack.namespace=p2"
        started = time.monotonic()
        docker(manager.docker_host, "stack", "deploy", "--resolve-image", "never", "-c", str(path), "p2")

        def all_running() -> bool:
            return sum(running_count(r.docker_host, label) for r in records) >= services * per_service

        wait_until("swarm tasks running", all_running, timeout=300, interval=0.1)
        seconds = time.monotonic() - started
        docker(manager.docker_host, "stack", "rm", "p2")
        wait_gone([r.docker_host for r in records], label)
        return seconds
    finally:
        for record in [*workers, manager]:
            docker(record.docker_host, "swarm", "leave", "--force", check=False)


def measure(services: int, per_service: int, only: set[str]) -> dict[str, Any]:
    times: dict[str, float] = {}
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-p2-"))
    try:
        with BenchCluster("P2") as cluster:
            cluster.create_hosts(*HOSTS)
            one_engine = cluster.record(HOSTS[0]).docker_host
            if "corral" in only:
                times["corral"] = time_corral(cluster, services, per_service)
            if "corral-1" in only:
                times["corral-1"] = time_corral_on_one_host(cluster, services, per_service)
            if "compose-v1" in only:
                times["compose-v1"] = time_compose("compose-v1", one_engine, services, per_service, workdir)
            if "compose-v2" in only:
                times["compose-v2"] = time_compose("compose-v2", one_engine, services, per_service, workdir)
            if "swarm" in only:
                times["swarm"] = time_swarm(cluster, services, per_service, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result_from(times, services, per_service)


def result_from(times: dict[str, float], services: int, per_service: int) -> dict[str, Any]:
    corral = times.get("corral", float("nan"))
    peers = {name: round(times[name], 2) for name in PEERS if name in times}
    composes = [times[name] for name in ("compose-v1", "compose-v2") if name in times]
    fastest = min(composes) if composes else float("nan")
    met = bool(composes) and corral <= 0.8 * fastest and ("swarm" not in times or corral < times["swarm"])
    return {
        "benchmark": "P2",
        "title": f"deploy {services * per_service} busybox containers ({services} services x {per_service})",
        "figure": round(corral, 2),
        "unit": "s",
        "target": round(0.8 * fastest, 2),
        "target_text": "<= 0.8x fastest compose, < swarm",
        "met": met,
        "peers": peers,
        "ratios": {name: round(corral / value, 2) for name, value in peers.items()},
        "containers": services * per_service,
        "corral_hosts": len(HOSTS),
        **_one_host(times),
    }


def _one_host(times: dict[str, float]) -> dict[str, Any]:
    """Corral on the one host the composes use, against Compose v2 (issue 15: <= 1.0x)."""
    if "corral-1" not in times:
        return {}
    one = times["corral-1"]
    figures: dict[str, Any] = {"corral_one_host_seconds": round(one, 2)}
    if "compose-v2" in times:
        figures["one_host_vs_compose_v2"] = round(one / times["compose-v2"], 2)
        figures["one_host_met"] = one <= times["compose-v2"]
    if "compose-v1" in times:
        figures["one_host_vs_compose_v1"] = round(one / times["compose-v1"], 2)
    return figures


def human(result: dict[str, Any]) -> list[str]:
    lines = [f"P2 {result['title']}: Corral on {result['corral_hosts']} local hosts {result['figure']} s"]
    lines += [
        f"  {name:<11} {value:7.2f} s   Corral/peer {result['ratios'][name]:.2f}"
        for name, value in result["peers"].items()
    ]
    lines.append(f"  target {result['target_text']} (= {result['target']} s): {'met' if result['met'] else 'NOT met'}")
    if "corral_one_host_seconds" in result:
        ratios = ", ".join(
            f"{value:.2f}x {name}"
            for name, value in (
                ("Compose v2", result.get("one_host_vs_compose_v2")),
                ("compose v1", result.get("one_host_vs_compose_v1")),
            )
            if value is not None
        )
        met = result.get("one_host_met")
        verdict = "not measured" if met is None else "met" if met else "NOT met"
        lines.append(
            f"  Corral on one host (the composes' engine) {result['corral_one_host_seconds']} s: {ratios}; "
            f"target <= 1.0x Compose v2: {verdict}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=6)
    parser.add_argument("--per-service", type=int, default=10)
    parser.add_argument("--only", default="corral,corral-1," + ",".join(PEERS), help="comma-separated subset to run")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/deploy.py needs root (local hosts are network namespaces with their own dockerd)")
    emit(measure(args.services, args.per_service, set(args.only.split(","))), args.json, human)


if __name__ == "__main__":
    main()
