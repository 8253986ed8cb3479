"""TLS (not a test): what TLS costs an agent connection. N websocket connects to a real `corral server` over WSS
(its own CA, ECDSA P-256) and to another one over plain WS (`--insecure-http`), in the same run.

Why measured this way: an agent opens its websocket once and keeps it for hours, so the handshake is the price TLS
adds per connection (plus reconnects after a server restart or a certificate rotation, when every agent connects at
once). Each connect is what an agent does: TCP, TLS with the pinned CA (the agent's own `ssl` context from
`agent/trust.py`), the authenticated websocket upgrade at `/v1/events` (the agent socket would need N hosts), one
close. Reported per connect: wall time, the client's CPU and the server process's CPU (utime + stime from
/proc/PID/stat), TLS minus plain. Connects alternate between the two servers so that machine load hits both alike.

Run: .venv/bin/python bench/tls_handshake.py [--connects 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster import emit
from tests.integration.servers import ServerProcess

from corral.agent.trust import client_context

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


async def connect_once(url: str, auth: str, context: Any) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, additional_headers={"Authorization": auth}, ssl=context, open_timeout=30):
        pass


def start(tmp: Path, name: str, **env: str) -> ServerProcess:
    data_dir = tmp / name
    data_dir.mkdir()
    server = ServerProcess(data_dir, CORRAL_LOCAL_DRIVER="0", **env)
    server.start()
    return server


async def measure(connects: int) -> dict[str, Any]:
    from corral.client.http import basic_auth_header

    with tempfile.TemporaryDirectory(prefix="corral-bench-tls-") as tmp:
        secure = start(Path(tmp), "tls")
        plain = start(Path(tmp), "plain", CORRAL_INSECURE_HTTP="1")
        try:
            assert secure.ca_file is not None and secure.process is not None and plain.process is not None
            context = client_context(secure.ca_file.read_text())
            sides = {
                "tls": (secure, secure.ws_url + "/v1/events", context),
                "plain": (plain, plain.ws_url + "/v1/events", None),
            }
            wall: dict[str, list[float]] = {"tls": [], "plain": []}
            client_cpu = {"tls": 0.0, "plain": 0.0}
            server_cpu = {"tls": 0.0, "plain": 0.0}
            for server, url, ssl_context in sides.values():  # warm up: imports, first connections
                await connect_once(url, basic_auth_header(server.access_key, server.secret_key), ssl_context)
            for _ in range(connects):
                for side, (server, url, ssl_context) in sides.items():
                    auth = basic_auth_header(server.access_key, server.secret_key)
                    assert server.process is not None
                    cpu_before, server_before = time.process_time(), server_cpu_seconds(server.process.pid)
                    started = time.perf_counter()
                    await connect_once(url, auth, ssl_context)
                    wall[side].append(time.perf_counter() - started)
                    client_cpu[side] += time.process_time() - cpu_before
                    server_cpu[side] += server_cpu_seconds(server.process.pid) - server_before
        finally:
            secure.stop()
            plain.stop()

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    per = {
        side: {
            "wall_ms_median": ms(statistics.median(wall[side])),
            "wall_ms_p95": ms(sorted(wall[side])[int(0.95 * (len(wall[side]) - 1))]),
            "client_cpu_ms": ms(client_cpu[side] / connects),
            "server_cpu_ms": ms(server_cpu[side] / connects),
        }
        for side in wall
    }
    added = per["tls"]["wall_ms_median"] - per["plain"]["wall_ms_median"]
    return {
        "benchmark": "TLS",
        "title": f"TLS handshake cost per agent websocket connect ({connects} connects each, same run)",
        "figure": round(added, 2),
        "unit": "ms added (median wall)",
        "target_text": "reported (no target)",
        "met": True,
        "connects": connects,
        "tls": per["tls"],
        "plain": per["plain"],
        "server_cpu_ms_added": round(per["tls"]["server_cpu_ms"] - per["plain"]["server_cpu_ms"], 2),
        "client_cpu_ms_added": round(per["tls"]["client_cpu_ms"] - per["plain"]["client_cpu_ms"], 2),
    }


def human(result: dict[str, Any]) -> list[str]:
    lines = [result["title"]]
    for side in ("plain", "tls"):
        r = result[side]
        lines.append(
            f"  {side:5}  wall median {r['wall_ms_median']} ms (p95 {r['wall_ms_p95']} ms), "
            f"client CPU {r['client_cpu_ms']} ms, server CPU {r['server_cpu_ms']} ms per connect"
        )
    lines.append(
        f"  TLS adds {result['figure']} ms wall, {result['client_cpu_ms_added']} ms client CPU, "
        f"{result['server_cpu_ms_added']} ms server CPU per connect"
    )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connects", type=int, default=200, help="websocket connects to each server")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    args = parser.parse_args(argv)
    emit(asyncio.run(measure(args.connects)), args.json, human)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
