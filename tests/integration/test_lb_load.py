"""No failed request through a load balancer while its target scales 2 -> 6 -> 2 and is upgraded with batch 1
(issue 19 acceptance), and none answered by a container that had not become healthy: each target serves 404 until
its page exists, a few seconds after start, and its health check asks for that page, so a request sent to a target
before it turned healthy would fail. Bounded: 50 client threads (10 of them asking for a page that takes 4 s, so
requests are in flight when a target stops; the app dies at once when stopped: without the agent's drain this test
saw 11 failed requests), a new connection per request, from the root namespace to the host's published port. The
upgrade runs at scale 3 (a scale 2 -> 3 after the 6 -> 2), not 2: a stop-first batch of one out of two leaves one
busybox httpd for 50 clients that give it no rest; its accept queue drops SYNs, HAProxy's own check rightly takes it
out and answers 503. HAProxy's
retries would hide a target that stopped while it was still configured (agent/drain.py drains it first), so its
log of abnormal requests (retries, redispatches, errors) must stay empty too."""

from __future__ import annotations

import errno
import http.client
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.servers import LB_SETTINGS, ServerProcess, wait_until
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration
SERVER_SETTINGS = LB_SETTINGS  # HAProxy's image into this module's hosts (conftest.py)

CLIENTS = 50

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["80:80"]
  app:
    image: corral/busybox:latest
    stop_signal: SIGKILL  # an app that stops at once: only the drain spares its requests in flight
    environment:
      RELEASE: "{release}"
    # the image's own /www/index.html goes first (else the target serves it at once, healthy, and the rewrite below
    # cuts the answers that read it); the page appears whole, by a rename, 3 s after start
    command: ["sh", "-c", "rm -f /www/index.html && mkdir -p /www/cgi-bin &&
      printf '#!/bin/sh\\nsleep 4\\necho Content-Type: text/plain\\necho\\necho slow\\n' > /www/cgi-bin/slow &&
      chmod 755 /www/cgi-bin/slow;
      (sleep 3; echo $$RELEASE $$(hostname) > /www/.page; mv /www/.page /www/index.html) &
      exec httpd -f -p 8080 -h /www"]
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      port_rules: [{source_port: 80, target_port: 8080, service: app}]
  app:
    scale: SCALE
    upgrade_strategy: {batch_size: 1, interval_millis: 0}
    health_check:
      port: 8080
      request_line: GET /index.html HTTP/1.0
      interval: 500
      response_timeout: 3000  # generous: under the load's own CPU use a busy httpd may answer a probe late
      healthy_threshold: 2
      unhealthy_threshold: 3
      initializing_timeout: 20000
      strategy: none
"""


TW_REUSE = Path("/proc/sys/net/ipv4/tcp_tw_reuse")


class Load:
    """Client threads sending GET / with a new connection each; every answer counted by (status, body)."""

    def __init__(self, address: str, *, slow: int = 0) -> None:
        self.address = address
        self.slow = slow  # this many clients ask for a page that takes 4 s (in flight when a target stops)
        self.stop = threading.Event()
        self.answers: Counter[str] = Counter()
        self.total = 0  # successful requests over the whole run
        self.failures: list[str] = []
        self.unsent = 0  # requests retried because the client had no local port left (not the LB's doing)
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=("/cgi-bin/slow" if i < slow else "/",), daemon=True)
            for i in range(CLIENTS)
        ]

    def _run(self, path: str) -> None:
        while not self.stop.is_set():
            try:
                connection = http.client.HTTPConnection(self.address, 80, timeout=10)
                connection.request("GET", path, headers={"Host": "app.example"})
                response = connection.getresponse()
                body = response.read().decode().strip()
                connection.close()
                outcome = body if response.status == 200 else f"HTTP {response.status}: {body[:60]}"
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:  # this client is out of local ports: the request never left it
                    with self.lock:
                        self.unsent += 1
                    time.sleep(0.05)
                    continue
                outcome = f"error: {exc!r}"
            except http.client.HTTPException as exc:  # a cut answer (IncompleteRead)
                outcome = f"error: {exc!r}"
            with self.lock:
                if outcome.startswith(("HTTP ", "error: ")):
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {outcome}")
                else:
                    if outcome != "slow":
                        self.answers[outcome] += 1
                    self.total += 1

    def serving(self) -> set[str]:
        """The answers seen since the last call (then forgotten)."""
        with self.lock:
            seen, self.answers = set(self.answers), Counter()
        return seen

    def __enter__(self) -> Load:
        # A new connection per request leaves ~500 sockets a second in TIME_WAIT (60 s) towards one address and port:
        # the 28,000 ephemeral ports run out within the run. Reusing TIME_WAIT ports for new outgoing connections
        # (safe with TCP timestamps) is what a real load generator does; the setting is restored on exit.
        self._tw_reuse = TW_REUSE.read_text()
        TW_REUSE.write_text("1")
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        TW_REUSE.write_text(self._tw_reuse)


def _files(tmp_path: Path, release: str, scale: int = 2) -> list[str]:
    compose = _write(tmp_path, f"docker-compose-{release}.yml", COMPOSE.format(release=release))
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER.replace("SCALE", str(scale)))
    return ["-f", str(compose), "-f", str(rancher)]


def _lb_log(server: ServerProcess, name: str = "shop-lb-1") -> list[str]:
    """The requests the LB logged: only abnormal ones (errors, retries, redispatches; network/haproxy_config.py)."""
    return [line for line in server.cli("logs", name).stdout.splitlines() if '"GET ' in line]


def _serving_for(load: Load, seconds: float) -> set[str]:
    load.serving()
    time.sleep(seconds)
    return load.serving()


def test_no_failed_request_through_scale_and_upgrade(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "load1")
    server.cli("up", "-d", *_files(tmp_path, "r1"), "-s", "shop")
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "load1")

    def two_serving() -> bool:
        try:
            connection = http.client.HTTPConnection(address, 80, timeout=5)
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False

    wait_until("the LB serves app", two_serving, 180)
    before = len(_lb_log(server))  # the 503s while no target was healthy yet
    started = time.monotonic()
    seen: list[set[str]] = [set()]

    def serving_r2_from_three() -> bool:
        seen[0] = _serving_for(load, 3)
        return len(seen[0]) == 3 and all(s.startswith("r2 ") for s in seen[0])

    with Load(address, slow=10) as load:
        try:
            wait_until("both app containers serve", lambda: len(_serving_for(load, 2)) == 2, 60)
            server.cli("scale", "shop/app=6")
            wait_until("six app containers serve", lambda: len(_serving_for(load, 2)) == 6, 180)
            server.cli("scale", "shop/app=2")
            wait_until("two app containers serve", lambda: len(_serving_for(load, 3)) == 2, 120)
            server.cli("scale", "shop/app=3")  # the upgrade's capacity (module docstring)
            wait_until("three app containers serve", lambda: len(_serving_for(load, 3)) == 3, 120)
            server.cli(
                "up",
                *_files(tmp_path, "r2", scale=3),
                "-s",
                "shop",
                "--upgrade",
                "--batch-size",
                "1",
                "--interval",
                "0",
            )
            wait_until("only r2 serves, from three containers", serving_r2_from_three, 180)
        except AssertionError:
            _explain(server, [f"last answers: {sorted(seen[0])}"])
            raise
        server.cli("up", "-s", "shop", "--confirm-upgrade")
        time.sleep(3)
    elapsed = time.monotonic() - started
    answered = [c for c in _containers(server, "shop") if c["service"] == "app" and c["state"] == "running"]
    print(
        f"\nload: {CLIENTS} clients, {elapsed:.0f} s, {load.total} requests answered, {len(load.failures)} failed, "
        f"{load.unsent} retried before they left the client (no local port)"
    )
    abnormal = _lb_log(server)[before:]
    if load.failures or abnormal or len(answered) != 3:
        _explain(server, ["failed:", *load.failures[:20], "HAProxy's abnormal requests:", *abnormal[:20]])
    assert load.failures == []
    assert abnormal == []  # a retried request: a target stopped before it left HAProxy
    assert len(answered) == 3


def _explain(server: ServerProcess, lines: list[str]) -> None:
    """Printed whole with a failure (an assertion's message is cut): HAProxy's check verdicts ("Server ... is DOWN")
    say whether a failure came from HAProxy's own check; the agent's drains and pushes, with their times, whether a
    target stopped while still offered; `ps` where each container stands."""
    verdicts = [line for line in server.cli("logs", "shop-lb-1").stdout.splitlines() if " is DOWN" in line]
    agent = (server.data_dir / "hosts" / "load1" / "agent.log").read_text(errors="replace").splitlines()
    print("\n".join([*lines, "HAProxy's verdicts:", *verdicts[:20], "agent:"]))
    print("\n".join(line for line in agent if "shop-app" in line or "shop-lb" in line))
    print(server.cli("ps", "-a", check=False).stdout)
