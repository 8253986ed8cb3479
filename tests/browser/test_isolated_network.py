"""The test browser does not see the machine's interfaces change (tests/browser/isolated_network.py).

Chromium fails the requests whose connections are being set up when an address of its network namespace changes
(net::ERR_NETWORK_CHANGED); the integration tests on other pytest-xdist workers add and remove such addresses all the
time. Here a veth pair comes and goes in the root namespace, with an address, while the page opens new connections
to a server whose TLS handshake takes a while (so that connection set-ups are in flight when the addresses change).
Without the browser's own namespace every one of these fetches failed (measured: 20 of 20 batches); with it, none.
"""

from __future__ import annotations

import contextlib
import http.server
import secrets
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import VIEWPORT
from tests.browser.isolated_network import BrowserNetwork
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration
HANDSHAKE_DELAY_S = 0.3
BATCHES = 12  # three fetches each, every one on a new connection


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body><h1>hello</h1></body></html>"
        self.send_response(200)
        self.send_header("Connection", "close")  # the next fetch sets up a connection again
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _SlowTLSServer(http.server.ThreadingHTTPServer):
    """HTTPS whose handshake starts HANDSHAKE_DELAY_S after the connection is accepted."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Hello)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        time.sleep(HANDSHAKE_DELAY_S)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        self.RequestHandlerClass(request, client_address, self)


@pytest.fixture
def slow_tls_server(ui_server: ServerProcess, browser_network: BrowserNetwork) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls = ui_server.data_dir / "tls"  # the test server's own certificate: any will do, the browser ignores its CA
    context.load_cert_chain(tls / "server.pem", tls / "server.key")
    server = _SlowTLSServer(context)
    thread = threading.Thread(target=server.serve_forever, name="slow-tls", daemon=True)
    thread.start()
    port = int(server.server_address[1])
    browser_network.expose(port)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def interfaces_changing() -> Iterator[None]:
    """A veth pair (both ends up, an address on one) added and removed in the root namespace, over and over."""
    name = f"crbv{secrets.token_hex(3)}"
    stop = threading.Event()

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)

    def churn() -> None:
        turn = 0
        while not stop.is_set():
            ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
            ip("addr", "add", f"198.51.100.{turn % 250 + 1}/24", "dev", name)  # TEST-NET-2: routed nowhere
            ip("link", "set", name, "up")
            ip("link", "set", f"{name}p", "up")
            stop.wait(0.1)
            ip("link", "delete", name)
            stop.wait(0.1)
            turn += 1

    thread = threading.Thread(target=churn, name="interfaces-changing", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        ip("link", "delete", name)


def test_requests_survive_interfaces_changing_outside_the_browser(
    browser: object, browser_network: BrowserNetwork, slow_tls_server: int
) -> None:
    if browser_network.namespace is None:
        pytest.skip(f"the browser runs in the machine's network namespace: {browser_network.reason}")
    pids = subprocess.run(
        ["ip", "netns", "pids", browser_network.namespace], capture_output=True, text=True, check=True
    ).stdout.split()
    assert pids, "no process in the browser's network namespace: Chromium runs elsewhere"
    context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        failures: list[str] = []
        page.on("requestfailed", lambda request: failures.append(f"{request.url}: {request.failure}"))
        page.goto(f"https://127.0.0.1:{slow_tls_server}/")
        with interfaces_changing():
            ok, errors = page.evaluate(
                """async (batches) => {
                    let ok = 0, errors = [];
                    for (let i = 0; i < batches; i++) {
                        try {
                            const answers = await Promise.all(["a", "b", "c"].map((p) => fetch(`/${p}${i}`)));
                            ok += answers.filter((answer) => answer.ok).length;
                        } catch (error) {
                            errors.push(String(error));
                        }
                    }
                    return [ok, errors];
                }""",
                BATCHES,
            )
    finally:
        context.close()
    assert (ok, errors, failures) == (3 * BATCHES, [], [])
