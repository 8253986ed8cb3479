"""The client waits for a restarting server and for a database outage (CLI), on a real local HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corral.client import CorralClient
from corral.model.errors import Unavailable

OUTAGE = "the server's database is unavailable (locked by another process); try again shortly"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    refusals: list[str] = []  # messages of the 503s still to answer, first to last
    calls: list[str] = []
    keys: list[str | None] = []  # the Idempotency-Key of each call

    def _answer(self) -> None:
        self.calls.append(self.command)
        self.keys.append(self.headers.get("Idempotency-Key"))
        if self.refusals:
            status, body = 503, {"error": "unavailable", "message": self.refusals.pop(0)}
        else:
            status, body = 200, {"data": [], "method": self.command}
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if status == 503:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    _Handler.refusals, _Handler.calls, _Handler.keys = [], [], []
    yield _free_port()


def _serve(port: int, after: float) -> list[ThreadingHTTPServer]:
    """Start serving on `port` after `after` seconds; the list holds the server once it runs."""
    started: list[ThreadingHTTPServer] = []

    def run() -> None:
        time.sleep(after)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        started.append(server)
        server.serve_forever(poll_interval=0.05)

    threading.Thread(target=run, daemon=True).start()
    return started


def test_a_call_waits_for_a_server_that_is_restarting(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    servers = _serve(port, after=1.0)
    with CorralClient(f"http://127.0.0.1:{port}", "a", "b", retry_seconds=20) as client:
        assert client.list_environments() == []
        assert client.request("POST", "/v1/x", json={})["method"] == "POST"  # never sent before: safe to send
    assert "waiting for the Corral server" in capsys.readouterr().err
    for server in servers:
        server.shutdown()


def test_without_a_retry_budget_an_absent_server_fails_at_once(port: int) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot reach"), CorralClient(f"http://127.0.0.1:{port}") as client:
        client.list_environments()
    assert time.monotonic() - started < 5


def test_reads_and_keyed_writes_wait_out_a_database_outage_but_other_503s_do_not(port: int) -> None:
    servers = _serve(port, after=0.0)
    time.sleep(0.3)
    with CorralClient(f"http://127.0.0.1:{port}", retry_seconds=20) as client:
        _Handler.refusals = [OUTAGE, OUTAGE]
        assert client.list_environments() == []
        assert _Handler.calls == ["GET", "GET", "GET"] and _Handler.keys == [None, None, None]
        _Handler.refusals = [OUTAGE]
        assert client.request("POST", "/v1/environments", json={})["method"] == "POST"
        # sent again with the same Idempotency-Key: the server applies it once (server/security/idempotency.py)
        first, again = _Handler.keys[-2:]
        assert _Handler.calls[-2:] == ["POST", "POST"] and first and first == again
        client.request("POST", "/v1/environments", json={})
        assert _Handler.keys[-1] not in (None, first)  # another call, another key
        _Handler.refusals = ["the agent of this container's host is not connected"]
        with pytest.raises(Unavailable, match="not connected"):
            client.list_environments()
    for server in servers:
        server.shutdown()
