"""Noisy neighbour (not a test): one environment holds many services at scale 0 (issue 14: a stack could starve the
server), another user works in a second environment; prints how long that user's calls take and how long the
orchestrator's passes take.

Run: .venv/bin/python bench/noisy_neighbour.py [--services 2000] [--seconds 20] [--json]
The server is the real application on a SQLite file, in-process (no hosts: the cost measured is the server's own).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store

PER_STACK = 200
IDLE_SECONDS = 10.0


def compose(prefix: str, services: int, scale: int) -> str:
    return "services:\n" + "".join(
        f"  {prefix}{i}:\n    image: busybox:latest\n    command: sleep 1d\n    scale: {scale}\n"
        for i in range(services)
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(services: int, seconds: float) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="corral-noisy-"))
    settings = Settings(data_dir=data, database_url=f"sqlite:///{data / 'corral.db'}", local_driver=False)
    store = open_store(settings)
    access, secret = ensure_admin_key(store, data) or ("", "")
    ensure_default_environment(store)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{access}:{secret}".encode()).decode()}
    app = create_app(settings, store)
    passes: list[float] = []
    original = app.state.orchestrator.run_once

    async def timed_pass() -> None:
        start = time.perf_counter()
        await original()
        passes.append(time.perf_counter() - start)

    app.state.orchestrator.run_once = timed_pass
    with TestClient(app, headers=auth) as api:
        quotas = {"services_per_environment": services, "services_per_stack": PER_STACK}
        api.post("/v1/environments", json={"name": "noisy", "quotas": quotas}).raise_for_status()
        api.post("/v1/environments", json={"name": "quiet"}).raise_for_status()
        for number in range(0, services, PER_STACK):
            body = {
                "environment": "noisy",
                "name": f"n{number}",
                "compose": compose("s", min(PER_STACK, services - number), 0),
            }
            api.put("/v1/stacks", json=body).raise_for_status()
        api.put(
            "/v1/stacks", json={"environment": "quiet", "name": "app", "compose": compose("w", 1, 1)}
        ).raise_for_status()
        service_id = api.get("/v1/services", params={"environment": "quiet"}).json()["data"][0]["id"]
        time.sleep(2 * 2.0)  # passes settle
        passes.clear()
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(IDLE_SECONDS)  # nobody works: what do the idle environments cost?
        idle_cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
        idle_passes = list(passes)
        passes.clear()
        writes: list[float] = []
        reads: list[float] = []
        deadline = time.monotonic() + seconds
        scale = 1
        while time.monotonic() < deadline:
            scale = 2 if scale == 1 else 1
            start = time.perf_counter()
            api.post(f"/v1/services/{service_id}/scale", json={"scale": scale}).raise_for_status()
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            api.get("/v1/stacks", params={"environment": "quiet"}).raise_for_status()
            reads.append(time.perf_counter() - start)
            time.sleep(0.2)
    store.engine.dispose()
    ms = 1000.0
    return {
        "services_at_scale_0": services,
        "idle_cpu_percent": round(idle_cpu * 100, 1),
        "idle_pass_ms": round(statistics.median(idle_passes) * ms, 1) if idle_passes else 0.0,
        "calls": len(writes),
        "scale_p50_ms": round(statistics.median(writes) * ms, 1),
        "scale_p99_ms": round(percentile(writes, 0.99) * ms, 1),
        "list_p50_ms": round(statistics.median(reads) * ms, 1),
        "list_p99_ms": round(percentile(reads, 0.99) * ms, 1),
        "passes": len(passes),
        "pass_p50_ms": round(statistics.median(passes) * ms, 1) if passes else 0.0,
        "pass_max_ms": round(max(passes) * ms, 1) if passes else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.services, args.seconds)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
