"""A real Corral server with local hosts for the end-to-end benchmarks (P2, P4, P5), and their shared output format.

Why not a copy of the test fixtures: the server process itself is the integration tests' `ServerProcess` (same
start, keys and teardown sweep); this module only gives each benchmark its own slot of the address ranges kept for
benchmarks (bridges in 198.18.248.0/22, overlays in 198.19.192.0/18: the lower part of 198.19.0.0/16 is taken by
the local hosts' docker0 `--bip` 198.19.N.1/24 inside their namespaces), so benchmarks never collide with a test
run or with each other.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.integration.servers import ServerProcess, wait_until  # noqa: E402

from corral.client import CorralClient  # noqa: E402
from corral.provision.local import LocalHostRecord  # noqa: E402

TEST_IMAGE = "corral/busybox:latest"
ENVIRONMENT = "default"
SLOTS = {"P2": 0, "P4": 1, "P5": 2, "P6": 3, "N1": 3, "L1": 2, "B1": 1}  # shared ranges: one at a time


class BenchCluster:
    """A server in a temp data dir on a free port, with `hosts` local hosts created in parallel."""

    def __init__(self, benchmark: str, **env: str) -> None:
        slot = SLOTS[benchmark]
        run_id = secrets.token_hex(2)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"corral-bench-{benchmark.lower()}-"))
        data_dir = self._tmp / "data"
        data_dir.mkdir()
        self.server = ServerProcess(
            data_dir,
            CORRAL_LOCAL_BRIDGE=f"cbr{slot}{run_id}",
            CORRAL_LOCAL_SUBNET=f"198.18.{248 + slot}.0/24",
            CORRAL_LOCAL_PREFIX=f"cb{slot}{run_id}",
            CORRAL_DEFAULT_SUBNET=f"198.19.{192 + 16 * slot}.0/20",
            CORRAL_LOCAL_SUPERVISE_SECONDS="0",
            **env,
        )
        self.client: CorralClient | None = None

    def __enter__(self) -> BenchCluster:
        try:
            self.server.start()
        except BaseException:
            self.close()
            raise
        self.client = self.server.client()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        try:
            self.server.teardown()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def api(self) -> CorralClient:
        assert self.client is not None, "use BenchCluster as a context manager"
        return self.client

    def create_hosts(self, *names: str, timeout: float = 180) -> None:
        """Ask for all hosts at once (the server provisions them concurrently), then wait until all are active."""
        for name in names:
            self.api().create_host(ENVIRONMENT, name)

        def all_active() -> bool:
            states = {h["name"]: h["state"] for h in self.api().list_hosts(ENVIRONMENT)}
            return all(states.get(name) == "active" for name in names)

        wait_until(f"hosts {', '.join(names)} active", all_active, timeout=timeout, interval=0.25)

    def record(self, name: str) -> LocalHostRecord:
        record = self.server.driver().load(name)
        assert record is not None, f"no local host {name}"
        return record

    def up(self, stack: str, compose: str, rancher_compose: str | None = None) -> None:
        self.api().stacks.up(ENVIRONMENT, stack, compose, rancher_compose=rancher_compose)

    def running(self, stack: str) -> list[dict[str, Any]]:
        return [c for c in self.api().stacks.containers(ENVIRONMENT, stack) if c["state"] == "running"]

    def wait_running(self, stack: str, count: int, timeout: float = 300, interval: float = 0.1) -> float:
        """Monotonic time at which `count` containers of the stack were first seen running."""

        def enough() -> bool:
            return len(self.running(stack)) >= count

        wait_until(f"{count} containers of {stack} running", enough, timeout=timeout, interval=interval)
        return time.monotonic()


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (and USS from smaps_rollup, when readable) of a process, in KiB."""
    result: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            result["rss"] = int(line.split()[1])
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return result
    fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.split()[1:2]}
    result["uss"] = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return result


def emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], list[str]]) -> None:
    """Human lines by default; with --json, the lines then one JSON object as the last line of stdout."""
    for line in human(result):
        print(line, flush=True)
    if as_json:
        print(json.dumps(result), flush=True)
