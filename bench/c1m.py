"""C1M (issue 15 item 5): S services x C containers submitted through the API of a real `corral server`, placed on N
simulated agents, until the server shows every container running.

Why reuse P3's simulator (`api_load.py`): the agents are the same real websocket clients speaking the real protocol
(hello, snapshot, desired/network deltas acknowledged by version, a snapshot reporting each desired container
running as soon as it is desired), so the server cannot tell them from real agents. Only one agent keeps a copy of
the environment's network state (the others follow and acknowledge its versions): N copies of it would measure this
process's memory, not the server's.

Recorded: seconds from the first `POST /v1/stacks` to all containers running as the server shows them (the sum of
`running` over `GET /v1/services`, paged, polled every second) and as the agents reported them; the server's peak
RSS (VmHWM) and CPU seconds; messages and bytes the server sent to all agents during the deploy and since they
connected; the bytes agents received for one service scaled by one (up, then down) afterwards.

Run: .venv/bin/python bench/c1m.py [--agents 200 --services 50 --per-service 100] [--profile out.txt] [--json]
(the defaults: 5,000 containers, about 1.5 minutes with set-up on this 2-core machine; 500 agents and 10,000
containers did not finish here: bench/README.md "C1M")
Long mode (the issue's size, not run here: see bench/README.md "C1M"):
     .venv/bin/python bench/c1m.py --agents 5000 --services 1000 --per-service 1000 --settle-timeout 3600
Targets (at 1,000 x 1,000 on 5,000 agents): all running in < 5 min, server RSS <= 4 GB, <= 2 KB to agents for a
scale by one. Peer: Nomad's C1M (1,000,000 containers on 5,000 hosts in under 5 minutes, 5 servers x 32 vCPUs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from api_load import (
    RAISED_QUOTAS,
    Agent,
    Server,
    ServerProfile,
    _progress,
    _scale_by_one,
    connect_agents,
)  # bench/ is the script's directory: P3's simulator

FULL_AGENTS = 5000
FULL_SERVICES = 1000
FULL_PER_SERVICE = 1000
TARGET_SECONDS = 300.0
TARGET_RSS_BYTES = 4 * 2**30
TARGET_SCALE_BYTES = 2048
NOMAD_C1M_SECONDS = 300.0


def compose_of(stack: int, services: int, per_service: int) -> tuple[str, str]:
    names = [f"c{stack:04d}x{i:03d}" for i in range(services)]
    compose = "services:\n" + "".join(f"  {n}:\n    image: busybox:latest\n    command: sleep 1d\n" for n in names)
    rancher = "services:\n" + "".join(f"  {n}:\n    scale: {per_service}\n" for n in names)
    return compose, rancher


def stack_sizes(services: int, per_stack: int) -> list[int]:
    """How many services each stack holds: `per_stack` each, the rest in the last one."""
    if services <= 0 or per_stack <= 0:
        raise ValueError("services and services per stack must be positive")
    full, rest = divmod(services, per_stack)
    return [per_stack] * full + ([rest] if rest else [])


def summarise(sizes: dict[str, int], measured: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's result from its sizes and raw measurements, with the targets and honest extrapolations.

    `met` is only ever true at the issue's full size: the targets are defined there, and a smaller run that meets
    them says little about 1,000,000 containers. The extrapolations are linear in what grows linearly (a lower
    bound for time); the full network state every agent receives grows with agents x containers."""
    containers = sizes["services"] * sizes["per_service"]
    seconds = measured["server_running_seconds"]
    full_containers = FULL_SERVICES * FULL_PER_SERVICE
    factor = full_containers / containers
    scale = measured["scale_by_one"]
    scale_desired = int(scale.get("up_desired_bytes", 0))
    scale_network = int(scale.get("up_network_bytes", 0))
    scale_bytes = scale_desired + scale_network
    full_state = int(scale.get("network_full_state_bytes", 0))
    full_size = (
        sizes["agents"] >= FULL_AGENTS
        and sizes["services"] >= FULL_SERVICES
        and sizes["per_service"] >= FULL_PER_SERVICE
    )
    rss = int(measured["server_peak_rss_bytes"])
    met = full_size and seconds < TARGET_SECONDS and rss <= TARGET_RSS_BYTES and scale_bytes <= TARGET_SCALE_BYTES
    per_agent_network = scale_network / sizes["agents"] if sizes["agents"] else 0.0
    return {
        "benchmark": "C1M",
        "title": f"C1M through the server ({sizes['agents']} agents, {sizes['services']} x {sizes['per_service']})",
        "figure": round(seconds, 1),
        "unit": "s",
        "target": TARGET_SECONDS,
        "target_text": "1,000 x 1,000 on 5,000 agents running < 300 s, RSS <= 4 GB, <= 2 KB per scale-by-one",
        "met": met,
        "full_size": full_size,
        "peers": {"nomad_c1m_seconds": NOMAD_C1M_SECONDS},
        "ratios": {"linear_1m_estimate_vs_nomad": round(seconds * factor / NOMAD_C1M_SECONDS, 2)},
        **sizes,
        "containers": containers,
        "server_running_seconds": round(seconds, 1),
        "agents_running_seconds": round(measured["agents_running_seconds"], 1),
        "containers_per_second": round(containers / seconds, 1) if seconds > 0 else None,
        "server_peak_rss_bytes": rss,
        "server_cpu_seconds": round(measured["server_cpu_seconds"], 1),
        "server_cpu_ms_per_container": round(1000 * measured["server_cpu_seconds"] / containers, 3),
        "bench_cpu_seconds": round(measured["bench_cpu_seconds"], 1),
        "deploy_messages": measured["deploy_messages"],
        "deploy_bytes": measured["deploy_bytes"],
        "total_messages": measured["total_messages"],
        "total_bytes": measured["total_bytes"],
        "deploy_bytes_per_container": round(measured["deploy_bytes"] / containers, 1),
        "deploy_reconnects": sum(measured.get("reconnects", {}).values()),
        "reconnect_reasons": measured.get("reconnects", {}),
        "scale_by_one_bytes": scale_bytes,
        "scale_by_one_desired_bytes": scale_desired,
        "scale_by_one_network_bytes": scale_network,
        "scale_by_one_network_bytes_per_agent": round(per_agent_network, 1),
        "scale_by_one_met": scale_bytes <= TARGET_SCALE_BYTES,
        "scale_by_one": scale,
        "network_full_state_bytes": full_state,
        "estimate_at_full_size": {
            "linear_seconds": round(seconds * factor),
            "linear_server_cpu_seconds": round(measured["server_cpu_seconds"] * factor),
        },
    }


def top_frames(collapsed: Iterable[str], count: int = 15, prefix: str = "") -> list[tuple[str, float, float]]:
    """From py-spy's raw (collapsed) output, where the time goes: (function, % own, % inclusive), most own first.

    Each line is `frame;frame;...;frame N` (outermost first), a frame `function (file:line)`; lines are dropped so
    one function is one entry. A sample is the own time of its innermost frame whose text contains `prefix` (with
    "corral/": the Corral function that was running, library calls under it included); inclusive counts every
    sample a function appears in."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        frames = [_function(frame) for frame in stack.split(";")]
        mine = [frame for frame in frames if prefix in frame]
        if mine:
            own[mine[-1]] += samples
        for frame in set(mine):
            inclusive[frame] += samples
    if total == 0:
        return []
    ranked = sorted(own, key=lambda f: (-own[f], -inclusive[f], f))[:count]
    return [(f, round(100 * own[f] / total, 1), round(100 * inclusive[f] / total, 1)) for f in ranked]


def _function(frame: str) -> str:
    """`f (path/file.py:123)` -> `f (path/file.py)`."""
    head, colon, line = frame.rpartition(":")
    return f"{head})" if colon and line.rstrip(")").isdigit() else frame


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (USER_HZ = 100)


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _bench_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _server_running(client: httpx.AsyncClient) -> int:
    """Containers running as the server shows them: the sum of `running` over every service, page by page."""
    running, token = 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"continue": token} if token else {})}
        reply = await client.get("/v1/services", params=params)
        reply.raise_for_status()
        body = reply.json()
        running += sum(int(s.get("running") or 0) for s in body["data"])
        token = body.get("continue")
        if not token:
            return running


async def _deploy(args: argparse.Namespace, client: httpx.AsyncClient, agents: list[Agent]) -> dict[str, float]:
    """Submit every stack, then wait until the server shows all containers running; seconds from the first POST."""
    want = args.services * args.per_service
    started = time.monotonic()
    for number, services in enumerate(stack_sizes(args.services, args.services_per_stack)):
        compose, rancher = compose_of(number, services, args.per_service)
        body = {"name": f"c1m{number:04d}", "compose": compose, "rancher_compose": rancher}
        (await client.post("/v1/stacks", json=body)).raise_for_status()
    submitted = time.monotonic() - started
    agents_done: float | None = None
    deadline = started + args.settle_timeout
    shown, last_print = 0, 0.0
    while True:
        now = time.monotonic()
        if agents_done is None and sum(a.running for a in agents) >= want:
            agents_done = now - started
        shown = await _server_running(client)
        if shown >= want:
            break
        if now > deadline:
            raise RuntimeError(f"only {shown} of {want} containers running after {args.settle_timeout:g} s")
        failed = next((a for a in agents if a.task is not None and a.task.done()), None)
        if failed is not None:
            raise RuntimeError(f"agent {failed.name} stopped: {failed.task.exception()!r}")  # type: ignore[union-attr]
        if now - last_print >= 10:
            last_print = now
            _progress(f"  {now - started:6.1f} s: server shows {shown} of {want} running")
        await asyncio.sleep(1.0)
    server_done = time.monotonic() - started
    return {
        "submit_seconds": submitted,
        "server_running_seconds": server_done,
        "agents_running_seconds": agents_done if agents_done is not None else server_done,
    }


async def scenario(args: argparse.Namespace) -> dict[str, Any]:
    server = Server(prefix="corral-bench-c1m-", **RAISED_QUOTAS)  # the default subnet's /24s fit 8,192 hosts
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # `timeout` stops the server too
    agents = [Agent(i) for i in range(args.agents)]
    for agent in agents[1:]:
        agent.track_network = False
    profiler: ServerProfile | None = None
    reconnects: Counter[str] = Counter()  # why agents' connections dropped (each one reconnects, as a real agent)
    try:
        server.start()
        assert server.process is not None
        pid = server.process.pid
        limits = httpx.Limits(keepalive_expiry=1.0)  # idle connections expire before uvicorn closes them (5 s)
        headers = {"Authorization": server.auth}
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=300, limits=limits, verify=server.ssl()
        ) as client:
            started = time.monotonic()
            await connect_agents(server, client, agents, reconnects)
            connect_seconds = time.monotonic() - started
            _progress(f"C1M: {args.agents} agents connected in {connect_seconds:.1f} s")
            messages = sum(a.messages for a in agents)
            sent = sum(a.bytes for a in agents)
            cpu, bench_cpu = _cpu_seconds(pid), _bench_cpu_seconds()
            profiler = ServerProfile(pid, args.profile)
            timings = await _deploy(args, client, agents)
            profiler.stop()
            measured: dict[str, Any] = {
                **timings,
                "connect_seconds": connect_seconds,
                "server_cpu_seconds": _cpu_seconds(pid) - cpu,
                "bench_cpu_seconds": _bench_cpu_seconds() - bench_cpu,
                "deploy_messages": sum(a.messages for a in agents) - messages,
                "deploy_bytes": sum(a.bytes for a in agents) - sent,
                "total_messages": sum(a.messages for a in agents),
                "total_bytes": sum(a.bytes for a in agents),
                "server_peak_rss_bytes": _peak_rss_bytes(pid),
                "reconnects": dict(reconnects),
            }
            _progress(f"C1M: all running after {timings['server_running_seconds']:.1f} s; scaling one service by one")
            first = (await client.get("/v1/services", params={"limit": 1})).json()["data"][0]
            measured["scale_by_one"] = await _scale_by_one(client, agents, first, args.services * args.per_service)
            measured["server_peak_rss_bytes_end"] = _peak_rss_bytes(pid)
            measured["reconnects_total"] = dict(reconnects)
    finally:
        if profiler is not None:
            profiler.stop()
        for agent in agents:
            if agent.task is not None:
                agent.task.cancel()
        await asyncio.gather(*(a.task for a in agents if a.task is not None), return_exceptions=True)
        server.stop()
    sizes = {"agents": args.agents, "services": args.services, "per_service": args.per_service}
    result = summarise(sizes, measured)
    result["connect_seconds"] = round(measured["connect_seconds"], 1)
    result["submit_seconds"] = round(measured["submit_seconds"], 1)
    result["services_per_stack"] = args.services_per_stack
    return result


def human(result: dict[str, Any], profile: list[tuple[str, float, float]]) -> list[str]:
    mib = 2**20
    estimate = result["estimate_at_full_size"]
    lines = [
        f"C1M: {result['services']} services x {result['per_service']} containers = {result['containers']} on "
        f"{result['agents']} simulated agents (agents connected in {result['connect_seconds']} s)",
        f"  all running as the server shows them {result['server_running_seconds']} s after the first POST "
        f"(agents reported all at {result['agents_running_seconds']} s; stacks submitted in "
        f"{result['submit_seconds']} s); {result['containers_per_second']} containers/s",
        f"  server: peak RSS {result['server_peak_rss_bytes'] / mib:.0f} MiB, {result['server_cpu_seconds']} CPU s "
        f"({result['server_cpu_ms_per_container']} ms per container); this process {result['bench_cpu_seconds']} CPU s",
        f"  sent to agents during the deploy: {result['deploy_messages']} messages, {result['deploy_bytes'] / mib:.1f} "
        f"MiB ({result['deploy_bytes_per_container']} B per container); since they connected "
        f"{result['total_messages']} messages, {result['total_bytes'] / mib:.1f} MiB",
        f"  agent connections dropped during the deploy (each reconnected): {result['deploy_reconnects']} "
        f"{result['reconnect_reasons'] or ''}",
        f"  scale by one: {result['scale_by_one_bytes']} B to agents "
        f"(desired {result['scale_by_one_desired_bytes']} B, "
        f"network {result['scale_by_one_network_bytes']} B = {result['scale_by_one_network_bytes_per_agent']} B per "
        f"agent; target <= {TARGET_SCALE_BYTES} B: {'met' if result['scale_by_one_met'] else 'NOT met'}); one host's "
        f"full network state {result['network_full_state_bytes']} B",
        f"  at 1,000 x 1,000 on 5,000 agents, linear: {estimate['linear_seconds']} s, "
        f"{estimate['linear_server_cpu_seconds']} server CPU s (a host's scoped network state grows with the hosts "
        "and its own containers, not with the environment's containers: not extrapolated)",
        f"  target (full size only): {'met' if result['met'] else 'NOT met'}"
        + ("" if result["full_size"] else " (not the full size)"),
    ]
    if profile:
        lines.append("  server profile during the deploy (py-spy; % own: innermost Corral function; % inclusive):")
        lines += [f"    {own:5.1f} {inc:5.1f}  {frame}" for frame, own, inc in profile]
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--per-service", type=int, default=100)
    parser.add_argument("--services-per-stack", type=int, default=10)
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    parser.add_argument("--profile", default="", help="py-spy the server during the deploy into this file (raw)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    for name in ("agents", "services", "per_service", "services_per_stack"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    result = asyncio.run(scenario(args))
    profile: list[tuple[str, float, float]] = []
    if args.profile and Path(args.profile).exists():
        with open(args.profile) as collapsed:
            profile = top_frames(collapsed, prefix="corral/")
        result["profile_top"] = [{"frame": f, "self_pct": s, "inclusive_pct": i} for f, s, i in profile]
    for line in human(result, profile):
        print(line, flush=True)
    if args.json:
        print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
