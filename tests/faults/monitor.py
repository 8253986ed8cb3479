"""The invariant monitor of the fault suite (issue 14): a thread that samples, once a second, every test host's
Docker engine (through its own dockerd socket) and the API, and records every breach of the invariants.

- I1: no (stack, service, index) runs on two containers at once, outside a start-first upgrade. A host cut off by
  the fault (partitioned, its agent frozen) counts as not running anything while it is cut off and until it has
  reconnected and dropped its stale containers, for at most `SETTLE_SECONDS` after the fault healed: the server
  may (and must, past the grace period) replace what it cannot see.
- I4: the monitor's own reads never answer 5xx; an unreachable server (it was killed) is counted, not a breach.
I2, I3 and I5 are checked by `converged` and `final` once the fault healed; each fault prints its figures.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx

from tests.integration.servers import ServerProcess

STACK_LABEL = "io.corral.stack"
SETTLE_SECONDS = 30.0  # a host back from isolation drops the containers replaced elsewhere within this
CONVERGE_SECONDS = 60.0  # I2
FINAL_SERVICE_STATES = frozenset({"active", "upgraded"})


@dataclass
class Window:
    """The figures of one fault, from `Monitor.fault` to its end."""

    name: str
    started: float = field(default_factory=time.monotonic)
    samples: int = 0
    api_samples: int = 0
    unreachable: int = 0
    violations: list[str] = field(default_factory=list)
    recovery: float | None = None


class Monitor(threading.Thread):
    def __init__(self, server: ServerProcess, hosts: list[str]) -> None:
        super().__init__(daemon=True, name="invariant-monitor")
        self.server = server
        self.hosts = hosts
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.isolated: dict[str, float | None] = {}  # host -> when its isolation healed (None: still cut off)
        self.start_first: set[tuple[str, str]] = set()  # (stack, service) in a start-first upgrade
        self.window = Window("setup")
        self.windows: list[Window] = []
        self._engines: dict[str, docker.DockerClient] = {}

    # -- sampling -----------------------------------------------------------------------------------------------

    def engine(self, host: str) -> docker.DockerClient:
        record = self.server.driver().load(host)
        assert record is not None, host
        if host not in self._engines:
            self._engines[host] = docker.DockerClient(base_url=record.docker_host, timeout=3)
        return self._engines[host]

    def running(self) -> dict[tuple[str, str, str], list[str]]:
        """(stack, service, index) -> ["container@host"] of what every reachable engine runs now."""
        found: defaultdict[tuple[str, str, str], list[str]] = defaultdict(list)
        for host in self.hosts:
            try:
                listed = self.engine(host).api.containers(filters={"label": STACK_LABEL, "status": "running"})
            except Exception:  # a dead dockerd runs nothing the cluster could count on
                continue
            for c in listed:
                labels = c["Labels"]
                if "io.corral.service.index" not in labels:
                    continue
                key = (labels[STACK_LABEL], labels["io.corral.service"], labels["io.corral.service.index"])
                found[key].append(f"{c['Names'][0].lstrip('/')}@{host}")
        return found

    def _sample(self) -> None:
        now = time.monotonic()
        running = self.running()
        with self.lock:
            window = self.window
            window.samples += 1
            for key, where in running.items():
                if len(where) < 2 or key[:2] in self.start_first:
                    continue
                counted = [w for w in where if not self._exempt(w.rsplit("@", 1)[1], now)]
                if len(counted) > 1:
                    window.violations.append(f"I1 {time.strftime('%H:%M:%S')} {key}: {sorted(where)}")
        try:
            with httpx.Client(verify=self.server.ssl_context() or True, timeout=5) as http:
                answers = [
                    http.get(f"{self.server.url}/v1/{kind}", auth=(self.server.access_key, self.server.secret_key))
                    for kind in ("services", "containers", "hosts")
                ]
        except httpx.TransportError:
            with self.lock:
                self.window.unreachable += 1
            return
        with self.lock:
            self.window.api_samples += 1
            for answer in answers:
                if answer.status_code >= 500:
                    self.window.violations.append(f"I4 GET {answer.url.path}: {answer.status_code} {answer.text[:200]}")

    def _exempt(self, host: str, now: float) -> bool:
        if host not in self.isolated:
            return False
        healed = self.isolated[host]
        return healed is None or now - healed < SETTLE_SECONDS

    def run(self) -> None:
        while not self.halt.is_set():
            began = time.monotonic()
            with contextlib.suppress(Exception):
                self._sample()
            self.halt.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        for engine in self._engines.values():
            engine.close()

    # -- faults -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[Window]:
        """One fault's window: its figures are printed at the end; any violation fails the test."""
        window = Window(name)
        with self.lock:
            self.window = window
        try:
            yield window
        finally:
            with self.lock:
                self.window = Window("between faults")
                self.windows.append(window)
                self.isolated.clear()
                self.start_first.clear()
            recovery = "n/a" if window.recovery is None else f"{window.recovery:.1f} s"
            print(
                f"\n[fault] {name}: engine samples {window.samples}, api samples {window.api_samples}, "
                f"server unreachable {window.unreachable}, violations {len(window.violations)}, recovery {recovery}"
            )
        assert not window.violations, window.violations

    def isolate(self, host: str) -> None:
        with self.lock:
            self.isolated[host] = None

    def healed(self, host: str) -> None:
        with self.lock:
            self.isolated[host] = time.monotonic()

    def converged(
        self, window: Window, expected: dict[tuple[str, str], int], since: float | None = None, timeout: float = 0
    ) -> None:
        """I2 and I3: every (stack, service) in `expected` runs exactly its acknowledged scale, as the API says and
        as the engines show, within CONVERGE_SECONDS of `since` (when the fault healed); records the recovery."""
        since = time.monotonic() if since is None else since
        deadline = since + (timeout or CONVERGE_SECONDS)
        last: Any = None
        while time.monotonic() < deadline:
            last = self._mismatch(expected)
            if last is None:
                window.recovery = max(window.recovery or 0.0, time.monotonic() - since)
                return
            time.sleep(0.5)
        window.violations.append(f"I2/I3 not converged {CONVERGE_SECONDS:.0f} s after the fault healed: {last}")
        raise AssertionError(window.violations[-1])

    def _mismatch(self, expected: dict[tuple[str, str], int]) -> str | None:
        try:
            services = self.api("services")
        except httpx.HTTPError as exc:
            return f"API: {exc}"
        running = self.running()
        isolated = {h for h, healed in self.isolated.items() if healed is None}
        for (stack, name), scale in expected.items():
            service = next((s for s in services if s["stack"] == stack and s["name"] == name), None)
            if service is None:
                return f"{stack}/{name} is gone (acknowledged at scale {scale})"
            if service["scale"] != scale or service["running"] != scale:
                return f"{stack}/{name}: scale {service['scale']} running {service['running']}, acknowledged {scale}"
            on_engines = {
                k[2]: [w for w in v if w.rsplit("@", 1)[1] not in isolated]
                for k, v in running.items()
                if k[:2] == (stack, name)
            }
            counted = sum(1 for where in on_engines.values() if where)
            if counted != scale or any(len(w) > 1 for w in on_engines.values()):
                return f"{stack}/{name}: engines run {on_engines}, acknowledged {scale}"
        return None

    def final(self, window: Window, stacks: list[str]) -> None:
        """I5: every service of the stacks is in a final state; every container not running says why."""
        for service in self.api("services"):
            if service["stack"] in stacks and service["state"] not in FINAL_SERVICE_STATES:
                window.violations.append(f"I5 {service['stack']}/{service['name']} ends {service['state']}")
        for container in self.api("containers"):
            if container["stack"] in stacks and container["state"] != "running" and not container.get("reason"):
                window.violations.append(f"I5 {container['name']} is {container['state']} without a reason")

    def api(self, kind: str) -> list[dict[str, Any]]:
        with httpx.Client(verify=self.server.ssl_context() or True, timeout=10) as http:
            answer = http.get(f"{self.server.url}/v1/{kind}", auth=(self.server.access_key, self.server.secret_key))
        answer.raise_for_status()
        data: list[dict[str, Any]] = answer.json()["data"]
        return data


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.3) -> Any:
    """Like tests/integration/servers.wait_until, but an unreachable server (a fault) is a reason to wait."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
