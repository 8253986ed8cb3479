"""B1 (not a test): compose `build:` on three local hosts: seconds to build once, then to stream the image through
the server to the two other hosts, against a direct `docker save | docker load` between two engines.

Why these figures: Corral builds each image once per architecture on one host and relays it to the others through
the server (server/hub/builds.py explains why a stream and not a registry); the relay's cost is what that choice adds.
The floor is the same image piped straight from one engine to another (no server, no websocket, no base64). The
context carries `--payload-mib` of random bytes (incompressible) so the image's size is known.

Run: .venv/bin/python bench/build_distribution.py [--payload-mib 4] [--json]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster import ENVIRONMENT, BenchCluster, emit, wait_until

from corral.cli.build_context import pack_contexts
from corral.compose.build import build_specs

HOSTS = ("b1", "b2", "b3")
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
COMPOSE = """services:
  app:
    build: ./app
    labels:
      io.rancher.scheduler.global: 'true'
"""


def project(root: Path, payload_mib: float) -> Path:
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text('FROM corral/busybox\nCOPY payload /payload\nCMD ["sleep", "3600"]\n')
    (root / "app" / "payload").write_bytes(os.urandom(int(payload_mib * 1024 * 1024)))
    compose = root / "docker-compose.yml"
    compose.write_text(COMPOSE)
    return compose


def measure(payload_mib: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="corral-bench-b1-") as tmp, BenchCluster("B1") as cluster:
        cluster.create_hosts(*HOSTS)
        compose = project(Path(tmp), payload_mib)
        packed = pack_contexts(compose.parent, build_specs(compose.name, compose.read_text(), answers={}))
        contexts = {p.digest: base64.b64encode(p.data).decode() for p in packed.values()}
        builds = (contexts, {s: p.digest for s, p in packed.items()}, "auto")
        started = time.monotonic()
        result = cluster.api().stacks.up(ENVIRONMENT, "bench", COMPOSE, builds=builds)

        def built() -> dict[str, Any] | None:
            stack = cluster.api().stacks.get(result["id"])
            states = [b["state"] for b in stack.get("builds", [])]
            return stack if states and all(s == "built" for s in states) else None

        stack = wait_until("the build", built, timeout=300, interval=0.1)
        built_at = time.monotonic()
        builder = stack["builds"][0]["host"]
        cluster.wait_running("bench", len(HOSTS), interval=0.1)
        running_at = time.monotonic()
        image = stack["services"][0]["image"]
        saved = sorted((cluster.server.data_dir / "builds" / "images").glob("*.tar"))
        image_bytes = saved[0].stat().st_size if saved else 0

        source = cluster.record(builder).docker_host
        target = cluster.record(next(h for h in HOSTS if h != builder)).docker_host
        subprocess.run([DOCKER, "-H", target, "rmi", "-f", image], capture_output=True, check=False)
        direct_started = time.monotonic()
        save = subprocess.Popen([DOCKER, "-H", source, "save", image], stdout=subprocess.PIPE)
        subprocess.run([DOCKER, "-H", target, "load"], stdin=save.stdout, check=True, capture_output=True)
        assert save.wait() == 0, "docker save failed"
        direct = time.monotonic() - direct_started
        loads = re.findall(r"loaded \S+ on (\S+) in ([0-9.]+) s", cluster.server.log())
    relay = running_at - built_at
    return {
        "benchmark": "B1",
        "payload_mib": payload_mib,
        "image_mib": round(image_bytes / 1048576, 2),
        "build_seconds": round(built_at - started, 2),
        "relay_to_2_hosts_seconds": round(relay, 2),
        "direct_save_load_one_host_seconds": round(direct, 2),
        "relay_mib_per_second": round(2 * image_bytes / 1048576 / relay, 1) if relay > 0 else None,
        "load_seconds_per_host": {host: float(seconds) for host, seconds in loads},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-mib", type=float, default=4.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.payload_mib)
    emit(
        result,
        args.json,
        lambda r: [
            f"B1 build {r['image_mib']} MiB image once: {r['build_seconds']} s (build + save to the server)",
            f"   relay to 2 other hosts until their containers run: {r['relay_to_2_hosts_seconds']} s "
            f"({r['relay_mib_per_second']} MiB/s)",
            f"   of which streaming and docker load per host: {r['load_seconds_per_host']}",
            f"   direct docker save | docker load to one host: {r['direct_save_load_one_host_seconds']} s",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
