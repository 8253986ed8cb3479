"""L1 (not a test): requests per second through a load balancer against the same target hit directly (ratio, same
run), and the seconds from a scale to the new target receiving traffic through the LB (issue 19).

Set-up: one local host; `app` (busybox httpd, a short page, scale 1) publishes 8080 on a random host port, and an LB
service (real HAProxy, corral/haproxy) publishes 80 routing to app:8080. Clients: `--clients` threads in this process,
a new connection per request (what a reload must not break), from the root namespace to the host's address; each mode
for `--seconds`. Then `app` scales 1 -> 2 and the time until the new container's page comes back through the LB is
taken (it includes the container's start and its health check: 2 passes 500 ms apart).

Run: .venv/bin/python bench/lb.py [--clients 8] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from typing import Any

from cluster import BenchCluster, emit, wait_until

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy
    ports: ["80:80"]
  app:
    image: corral/busybox:latest
    ports: ["8080"]
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      port_rules: [{source_port: 80, target_port: 8080, service: app}]
  app:
    health_check: {port: 8080, request_line: GET / HTTP/1.0, interval: 500, response_timeout: 1000,
                   healthy_threshold: 2, unhealthy_threshold: 2, initializing_timeout: 20000, strategy: none}
"""


def fetch(address: str, port: int) -> str | None:
    try:
        connection = http.client.HTTPConnection(address, port, timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read().decode().strip()
        connection.close()
        return body if response.status == 200 else None
    except OSError:
        return None


def rate(address: str, port: int, clients: int, seconds: float) -> dict[str, float]:
    done, failed = [0] * clients, [0] * clients
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        while time.monotonic() < stop:
            if fetch(address, port) is None:
                failed[slot] += 1
            else:
                done[slot] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rps": round(sum(done) / seconds, 1), "failed": sum(failed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # HAProxy's image into the hosts (the test servers' default copies busybox only)
    with BenchCluster("L1", CORRAL_LOCAL_IMAGES="corral/busybox*,corral/haproxy") as cluster:
        cluster.create_hosts("l1")
        address = cluster.record("l1").address
        cluster.up("bench", COMPOSE, RANCHER)
        wait_until("the LB answers", lambda: fetch(address, 80) is not None, timeout=300, interval=0.5)
        first = fetch(address, 80)
        published = [p for c in cluster.running("bench") if c["service"] == "app" for p in c.get("ports", [])]
        direct_port = int(published[0].split("->")[0].rsplit(":", 1)[1])
        direct = rate(address, direct_port, args.clients, args.seconds)
        through = rate(address, 80, args.clients, args.seconds)
        started = time.monotonic()
        cluster.server.cli("scale", "bench/app=2")

        def new_one_answers() -> bool:
            return any((page := fetch(address, 80)) is not None and page != first for _ in range(4))

        wait_until("the new app container answers through the LB", new_one_answers, timeout=120, interval=0.1)
        scale_seconds = time.monotonic() - started
    result: dict[str, Any] = {
        "benchmark": "L1",
        "clients": args.clients,
        "seconds": args.seconds,
        "direct": direct,
        "lb": through,
        "ratio": round(through["rps"] / direct["rps"], 3) if direct["rps"] else 0.0,
        "scale_to_traffic_seconds": round(scale_seconds, 2),
    }
    emit(result, args.json, lambda r: [
        f"L1 direct: {r['direct']['rps']} req/s ({r['direct']['failed']} failed)",
        f"L1 through the LB: {r['lb']['rps']} req/s ({r['lb']['failed']} failed), ratio {r['ratio']}",
        f"L1 scale 1 -> 2 to the new target receiving traffic: {r['scale_to_traffic_seconds']} s",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
