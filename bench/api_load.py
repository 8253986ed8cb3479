"""P3 (issue 8): the API under load. A real `corral server` (temp data dir, SQLite, local driver off) whose state holds
H hosts and C containers, with every host's agent simulated by a real websocket client speaking the real protocol
(hello -> welcome, snapshot; each `desired` answered with a snapshot reporting its containers running), all from one
asyncio process. Then 20 concurrent clients call the list endpoints (containers, hosts, stacks, services) and a
mutating call (POST /v1/services/{id}/scale, +1 / -1) for a while; the script reports p50 / p99 of each.

Why simulated agents: 1,000 hosts with dockerd each do not fit on one machine, but the server cannot tell the
difference: it receives the same messages over the same websocket.

Run: .venv/bin/python bench/api_load.py [--hosts 1000 --containers 30000 --clients 20 --seconds 30] [--json]
Targets: mutating p99 <= 50 ms, list p99 <= 250 ms. Peers: Kubernetes' mutating API SLO (p99 <= 1 s), Swarm's
p99 scheduling of 400 ms with 30,000 containers on 1,000 nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from corral.model import deltas, protocol
from corral.model.network_deltas import Parts, apply_network

MUTATING_TARGET_MS = 50.0
LIST_TARGET_MS = 250.0
K8S_MUTATING_P99_MS = 1000.0
SWARM_SCHEDULING_P99_MS = 400.0
PER_SERVICE = 50
SERVICES_PER_STACK = 5
LIST_CALLS = ("/v1/containers", "/v1/containers?limit=100", "/v1/hosts", "/v1/stacks", "/v1/services")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `corral server` subprocess in a temp data dir; stopped by its PID."""

    def __init__(self, prefix: str = "corral-bench-p3-", **env: str) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.env = env  # more CORRAL_* settings (C1M raises the quotas)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"  # TLS with the server's own CA, as every server serves
        self.ca_file = self.data_dir / "tls" / "ca.pem"
        self.process: subprocess.Popen[bytes] | None = None
        self.auth = ""

    def start(self) -> None:
        env = {
            **os.environ,
            "CORRAL_DATA_DIR": str(self.data_dir),
            "CORRAL_LOCAL_DRIVER": "0",
            "CORRAL_HEARTBEAT_SECONDS": "300",  # simulated agents stay silent between messages
            "CORRAL_HOST_GRACE_SECONDS": "3600",
            "CORRAL_AGENT_OVERLAY": "0",
            "CORRAL_DEFAULT_SUBNET": "198.19.0.0/16",
            **self.env,
        }
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corral", "server", "--port", str(self.port)], env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError, OSError, ssl.SSLError):
                if httpx.get(f"{self.url}/healthz", timeout=2, verify=self.ssl()).status_code == 200:
                    break
            time.sleep(0.2)
        values = dict(line.split("=", 1) for line in (self.data_dir / "admin.env").read_text().split() if "=" in line)
        pair = f"{values['CORRAL_ACCESS_KEY']}:{values['CORRAL_SECRET_KEY']}".encode()
        self.auth = "Basic " + base64.b64encode(pair).decode()

    def ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Agent:
    """One simulated agent: registers, connects, and reports every desired container as running."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"sim{index:05d}"
        self.auth = ""
        self.running = 0
        self.created: dict[str, float] = {}  # slot id -> when its container was "created"
        self.task: asyncio.Task[None] | None = None
        self.deltas = True  # ask for desired and network deltas (model/deltas.py, model/network_deltas.py)
        self.received: dict[str, int] = {}  # message type -> bytes received (the scale-by-one figure)
        self.last_message = 0.0  # monotonic time of the latest desired or network message
        self.ws: Any = None
        self.desired_version: int | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.network_version: int | None = None
        self.network: Parts | None = None
        self.network_full_bytes = 0  # the size of the latest full network state
        self.track_network = True  # False: only versions are followed and acknowledged (C1M: one copy, not N)
        self.messages = 0  # every message the server sent this agent, and their bytes
        self.bytes = 0

    async def register(self, client: httpx.AsyncClient, token: str) -> None:
        arch = "aarch64" if self.index % 4 == 3 else "x86_64"
        facts = {"hostname": self.name, "arch": arch, "cpus": 8, "memory_bytes": 16 * 2**30, "os": "linux"}
        body = {"token": token, "name": self.name, "labels": {"zone": ("eu", "us", "ap")[self.index % 3]}}
        reply = await client.post("/v1/agent/register", json={**body, "facts": facts})
        reply.raise_for_status()
        keys = reply.json()
        self.auth = "Basic " + base64.b64encode(f"{keys['access_key']}:{keys['secret_key']}".encode()).decode()
        self.facts = facts

    async def run(self, url: str, connected: asyncio.Event, trust: ssl.SSLContext) -> None:
        socket_url = url.replace("https://", "wss://") + "/v1/agent"
        async with websockets.connect(
            socket_url,
            ssl=trust,
            additional_headers={"Authorization": self.auth},
            max_size=protocol.MAX_MESSAGE_BYTES,
            ping_interval=None,  # a server busy placing thousands of containers answers pings late
            open_timeout=120,  # and hundreds of agents connecting at once wait for it to accept them
        ) as ws:
            self.ws = ws
            hello = {"facts": self.facts, "labels": {}, "images": {}, "deltas": self.deltas}
            hello["network_deltas"] = self.deltas
            await ws.send(protocol.Message(protocol.HELLO, hello).encode())
            running = [_running(item, self.created) for item in self.entries.values() if item["running"]]
            await ws.send(protocol.Message(protocol.SNAPSHOT, {"containers": running}).encode())  # after a reconnect
            connected.set()
            async for raw in ws:
                message = protocol.decode(raw)
                self.messages += 1
                self.bytes += len(raw)
                self.received[message.type] = self.received.get(message.type, 0) + len(raw)
                kind = f"{message.type}_{'delta' if 'base' in message.data or 'put' in message.data else 'full'}"
                self.received[kind] = self.received.get(kind, 0) + 1  # how many of each
                if message.type == protocol.DESIRED:
                    self.last_message = time.monotonic()
                    await self._on_desired(ws, message.data)
                elif message.type == protocol.NETWORK:
                    self.last_message = time.monotonic()
                    await self._on_network(ws, message.data, len(raw))

    async def _on_desired(self, ws: Any, data: dict[str, Any]) -> None:
        """As agent/session.py: a delta on the held version, or a full set; acknowledged; reported running."""
        if "put" in data:
            if deltas.is_gap(self.desired_version, data):
                await ws.send(
                    protocol.Message(protocol.ACK, {"desired": self.desired_version, "resync": True}).encode()
                )
                return
            self.entries = deltas.apply(self.entries, data)
        else:
            self.entries = deltas.by_slot(data.get("containers", []))
        if "version" in data:
            self.desired_version = data["version"]
            await ws.send(protocol.Message(protocol.ACK, {"desired": self.desired_version}).encode())
        containers = [_running(item, self.created) for item in self.entries.values() if item["running"]]
        self.running = len(containers)
        await ws.send(protocol.Message(protocol.SNAPSHOT, {"containers": containers}).encode())

    async def _on_network(self, ws: Any, data: dict[str, Any], size: int) -> None:
        if not self.track_network:  # what the server sees is the same: acknowledged versions, resyncs on a gap
            if "base" in data and (self.network_version is None or deltas.is_gap(self.network_version, data)):
                await ws.send(
                    protocol.Message(protocol.ACK, {"network": self.network_version, "resync": True}).encode()
                )
                return
            if "base" not in data:
                self.network_full_bytes = size
        elif "base" in data:
            if self.network is None or deltas.is_gap(self.network_version, data):
                await ws.send(
                    protocol.Message(protocol.ACK, {"network": self.network_version, "resync": True}).encode()
                )
                return
            self.network = apply_network(self.network, data)
        elif not self.deltas:  # a full state each time: only what the figure needs is kept
            self.network = Parts.of(data)
            self.network_full_bytes = size
            return
        else:
            self.network = Parts.of(data)
            self.network_full_bytes = size
        if "version" in data:
            self.network_version = data["version"]
            await ws.send(protocol.Message(protocol.ACK, {"network": self.network_version}).encode())

    async def resync_network(self) -> None:
        """Ask for the full network state (a gap, as an agent would): its size is the figure deltas compare to."""
        await self.ws.send(protocol.Message(protocol.ACK, {"network": self.network_version, "resync": True}).encode())


async def register_agents(client: httpx.AsyncClient, agents: list[Agent], token: str) -> None:
    """Register every simulated agent with `token`, 20 at a time (as many hosts joining at once would)."""
    limit = asyncio.Semaphore(20)

    async def register(agent: Agent) -> None:
        async with limit:
            await agent.register(client, token)

    await asyncio.gather(*(register(a) for a in agents))


async def _quiet(agents: list[Agent], seconds: float = 2.0, timeout: float = 120.0) -> None:
    """Until no agent received a desired or network message for `seconds`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if time.monotonic() - max(a.last_message for a in agents) >= seconds:
            return
        await asyncio.sleep(0.2)


async def _network_shows(agent: Agent, running: int, timeout: float = 120.0) -> None:
    """Until the agent's network state shows `running` containers running (deltas or full states alike)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        state = agent.network
        if state is not None and sum(1 for c in state.sections["containers"].values() if c["running"]) == running:
            return


async def _scale_by_one(
    client: httpx.AsyncClient, agents: list[Agent], service: dict[str, Any], want: int
) -> dict[str, Any]:
    """Bytes of `desired` and `network` messages all agents received for one service scaled up by one, then down by
    one (each until the agents are quiet), and the size of one host's full network state for comparison."""
    figures: dict[str, Any] = {}
    for step, scale in (("up", service["scale"] + 1), ("down", service["scale"])):
        await _network_shows(agents[0], want if step == "up" else want + 1)  # the setup's running flags are out
        await _quiet(agents)
        before = [dict(a.received) for a in agents]
        (await client.post(f"/v1/services/{service['id']}/scale", json={"scale": scale})).raise_for_status()
        target = want + 1 if step == "up" else want
        deadline = time.monotonic() + 120
        while sum(a.running for a in agents) != target and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await _network_shows(agents[0], target)
        await _quiet(agents)
        for kind in (
            protocol.DESIRED,
            protocol.NETWORK,
            "network_delta",
            "network_full",
            "desired_delta",
            "desired_full",
        ):
            sent = sum(a.received.get(kind, 0) - b.get(kind, 0) for a, b in zip(agents, before, strict=True))
            figures[f"{step}_{kind}_bytes"] = sent
    if agents[0].deltas:
        held = agents[0].received.get("network_full", 0)
        await agents[0].resync_network()
        deadline = time.monotonic() + 60
        while agents[0].received.get("network_full", 0) == held and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    figures["network_full_state_bytes"] = agents[0].network_full_bytes
    return figures


def _running(item: dict[str, Any], created: dict[str, float]) -> dict[str, Any]:
    """The container a real engine would report for a desired entry (its creation time stays what it was)."""
    slot = item["slot"]
    name = f"{slot['stack']}-{slot['service']}-{slot['index']}"
    return {
        "docker_id": slot["id"],
        "name": name,
        "image": item["launch"]["image"],
        "state": "running",
        "status": "Up",
        "labels": {"io.corral.container": slot["id"], "io.corral.config-hash": slot["config_hash"]},
        "created": created.setdefault(slot["id"], time.time()),
    }


def compose_of(stack: int, services: int) -> tuple[str, str]:
    names = [f"s{stack:03d}x{i}" for i in range(services)]
    compose = "services:\n" + "".join(f"  {n}:\n    image: busybox:latest\n    command: sleep 1d\n" for n in names)
    rancher = "services:\n" + "".join(f"  {n}:\n    scale: {PER_SERVICE}\n" for n in names)
    return compose, rancher


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def load(
    url: str, auth: str, clients: int, seconds: float, services: list[dict[str, Any]], trust: ssl.SSLContext
) -> dict[str, list]:
    timings: dict[str, list[float]] = {path: [] for path in (*LIST_CALLS, "scale")}
    scales = {s["id"]: s["scale"] for s in services}
    deadline = time.monotonic() + seconds
    calls = [*LIST_CALLS, "scale"]

    async def worker(number: int) -> None:
        rng = random.Random(number)  # noqa: S311 - which service to scale, not a secret
        headers = {"Authorization": auth}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, verify=trust) as client:
            turn = number
            while time.monotonic() < deadline:
                call = calls[turn % len(calls)]
                turn += 1
                start = time.perf_counter()
                if call == "scale":
                    service_id = rng.choice(list(scales))
                    scales[service_id] += 1 if scales[service_id] <= PER_SERVICE else -1
                    reply = await client.post(f"/v1/services/{service_id}/scale", json={"scale": scales[service_id]})
                else:
                    reply = await client.get(call)
                reply.raise_for_status()
                timings[call].append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(worker(n) for n in range(clients)))
    return timings


async def scenario(args: argparse.Namespace) -> dict[str, Any]:
    server = Server()
    agents = [Agent(i) for i in range(args.hosts)]
    for agent in agents:
        agent.deltas = args.deltas
    try:
        server.start()
        headers = {"Authorization": server.auth}
        # idle connections expire before the server's keep-alive closes them (uvicorn: 5 s)
        limits = httpx.Limits(keepalive_expiry=1.0)
        trust = server.ssl()
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=120, limits=limits, verify=trust
        ) as client:
            reply = await client.post("/v1/environments/default/registration-tokens", json={"description": "bench"})
            reply.raise_for_status()
            token = reply.json()["token"]
            started = time.monotonic()
            await register_agents(client, agents, token)
            events = [asyncio.Event() for _ in agents]
            for agent, event in zip(agents, events, strict=True):
                agent.task = asyncio.create_task(agent.run(server.url, event, trust))
                await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=300)
            setup_hosts = time.monotonic() - started
            stacks = max(1, args.containers // (PER_SERVICE * SERVICES_PER_STACK))
            started = time.monotonic()
            for number in range(stacks):
                compose, rancher = compose_of(number, SERVICES_PER_STACK)
                body = {"name": f"bench{number:03d}", "compose": compose, "rancher_compose": rancher}
                (await client.post("/v1/stacks", json=body)).raise_for_status()
            want = stacks * SERVICES_PER_STACK * PER_SERVICE
            deadline = time.monotonic() + args.settle_timeout
            while sum(a.running for a in agents) < want:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {sum(a.running for a in agents)} of {want} containers running")
                if any(a.task is not None and a.task.done() for a in agents):
                    failed = next(a for a in agents if a.task is not None and a.task.done())
                    raise RuntimeError(f"agent {failed.name} stopped: {failed.task.exception()!r}")  # type: ignore[union-attr]
                await asyncio.sleep(0.5)
            setup_containers = time.monotonic() - started
            services = (await client.get("/v1/services")).json()["data"]
            scale_by_one = await _scale_by_one(client, agents, services[0], want)
        timings = await load(server.url, server.auth, args.clients, args.seconds, services, trust)
    finally:
        for agent in agents:
            if agent.task is not None:
                agent.task.cancel()
        await asyncio.gather(*(a.task for a in agents if a.task is not None), return_exceptions=True)
        server.stop()
    report = {
        call: {
            "count": len(values),
            "p50_ms": round(statistics.median(values), 1) if values else None,
            "p99_ms": round(percentile(values, 0.99), 1),
        }
        for call, values in timings.items()
    }
    return {
        "hosts": args.hosts,
        "containers": want,
        "clients": args.clients,
        "load_seconds": args.seconds,
        "setup_hosts_seconds": round(setup_hosts, 1),
        "setup_containers_seconds": round(setup_containers, 1),
        "deltas": args.deltas,
        "scale_by_one": scale_by_one,
        "calls": report,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--containers", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the clients call the API")
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    parser.add_argument("--no-deltas", dest="deltas", action="store_false", help="agents take full states only")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    detail = asyncio.run(scenario(args))
    calls = detail["calls"]
    mutating = calls["scale"]["p99_ms"]
    list_p99 = max(calls[c]["p99_ms"] for c in LIST_CALLS)
    met = mutating <= MUTATING_TARGET_MS and list_p99 <= LIST_TARGET_MS
    result: dict[str, Any] = {
        "benchmark": "P3",
        "title": "API under load",
        "figure": mutating,
        "unit": "ms",
        "target": MUTATING_TARGET_MS,
        "target_text": "mutating p99 <= 50 ms and list p99 <= 250 ms",
        "met": met,
        "peers": {
            "kubernetes_mutating_p99_slo_ms": K8S_MUTATING_P99_MS,
            "swarm_p99_scheduling_ms": SWARM_SCHEDULING_P99_MS,
        },
        "ratios": {
            "mutating_p99_vs_kubernetes_slo": round(mutating / K8S_MUTATING_P99_MS, 3),
            "mutating_p99_vs_swarm": round(mutating / SWARM_SCHEDULING_P99_MS, 3),
        },
        "mutating_p99_ms": mutating,
        "list_p99_ms": list_p99,
        **detail,
    }
    print(
        f"P3 API under load: {detail['hosts']} simulated hosts, {detail['containers']} containers running, "
        f"{detail['clients']} clients for {detail['load_seconds']:g} s "
        f"(setup: hosts {detail['setup_hosts_seconds']} s, containers {detail['setup_containers_seconds']} s)"
    )
    for call, figures in calls.items():
        print(f"  {call:<16} n={figures['count']:<5} p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms")
    print(
        f"  mutating p99 {mutating} ms (target <= {MUTATING_TARGET_MS:g}), list p99 {list_p99} ms "
        f"(target <= {LIST_TARGET_MS:g}): {'met' if met else 'NOT met'}; Kubernetes SLO 1 s, Swarm 400 ms"
    )
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
