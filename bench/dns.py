"""Benchmark (not a test): queries per second the per-host DNS server (agent/dns.py) answers, against the issue's
target of 1,000 per host.

The server runs alone in a child process (as in the agent, one event loop), on a loopback address, with an
environment of 50 stacks x 4 services x 3 containers. The client, in this process, sends from a known container's
address (127.54.1.1, so per-client names are in play) a mix of `web`, `web.shop7`, `db.shop7.corral.internal` and a
container name, keeping `WINDOW` queries in flight, for `SECONDS`; answers are checked for the id and at least one
address. Forwarded names are not measured: their speed is the upstream's.

Run: .venv/bin/python bench/dns.py [SECONDS]
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import socket
import sys
import time
from pathlib import Path

from dnslib import DNSRecord

from corral.agent.dns import DnsServer
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState

SERVER_IP = "127.54.0.1"
CLIENT_IP = "127.54.1.1"
PORT = 5353
TARGET_QPS = 1_000
WINDOW = 16
STACKS, SERVICES, SCALE = 50, ("web", "db", "cache", "worker"), 3


def environment() -> NetworkState:
    containers = []
    addresses = (f"127.54.{1 + n // 250}.{1 + n % 250}" for n in itertools.count())
    for s in range(STACKS):
        for service in SERVICES:
            for index in range(1, SCALE + 1):
                stack = f"shop{s}"
                containers.append(
                    ContainerRecord(
                        slot_id=f"{stack}-{service}-{index}",
                        name=f"{stack}-{service}-{index}",
                        stack=stack,
                        service=service,
                        index=index,
                        host_id="h1",
                        ip=next(addresses),
                        running=True,
                        healthy=True,
                        links=("db:database",),
                    )
                )
    return NetworkState(
        environment_id="e1",
        environment="bench",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.0.0/24"),
        containers=tuple(containers),
    )


def serve(ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        server = DnsServer(address=SERVER_IP, port=PORT, resolv_conf=Path("/nonexistent"))
        server.update(environment())
        await server.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await server.close()

    asyncio.run(main())


def load(seconds: float) -> tuple[int, int, float]:
    """(answered, bad, elapsed): `WINDOW` queries in flight, a new one for each answer."""
    names = ["web", "web.shop7", "db.shop7.corral.internal", "shop3-cache-2", "database"]
    packets = [DNSRecord.question(name) for name in names]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((CLIENT_IP, 0))
    client.connect((SERVER_IP, PORT))
    client.settimeout(2.0)
    answered = bad = 0
    sent = itertools.count()

    def send() -> None:
        query = packets[next(sent) % len(packets)]
        query.header.id = (query.header.id + 1) % 65536
        client.send(query.pack())

    start = time.perf_counter()
    for _ in range(WINDOW):
        send()
    while time.perf_counter() - start < seconds:
        try:
            reply = DNSRecord.parse(client.recv(4096))
        except TimeoutError:
            bad += 1
            send()
            continue
        if reply.header.rcode == 0 and reply.rr:
            answered += 1
        else:
            bad += 1
        send()
    elapsed = time.perf_counter() - start
    client.close()
    return answered, bad, elapsed


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(ready, stop), daemon=True)
    child.start()
    try:
        if not ready.wait(10):
            print("the DNS server did not start")
            return 1
        answered, bad, elapsed = load(seconds)
    finally:
        stop.set()
        child.join(5)
    qps = answered / elapsed
    verdict = "meets" if qps >= TARGET_QPS and not bad else "MISSES"
    print(
        f"DNS: {answered} answers in {elapsed:.1f}s = {qps:,.0f} queries/s ({bad} bad or lost) "
        f"over {STACKS * len(SERVICES) * SCALE} containers; {verdict} the {TARGET_QPS:,}/s target"
    )
    return 0 if verdict == "meets" else 1


if __name__ == "__main__":
    sys.exit(main())
