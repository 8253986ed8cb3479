"""Resuming from a version (issue 15, item 4), through the real application served in-process over loopback: the
events websocket replays what came after a version and goes live without a gap or a duplicate, says `resync-required`
(close code 4410) when the history no longer reaches back; a collection's `watch=true` streams a scale change as
ADDED lines; a caller of another environment sees none of it; the client's follower resumes across a restart.

Why a real server (uvicorn in a thread) and not the TestClient: a watch is an endless streamed body, which the
TestClient collects whole before answering; and the restart test needs the socket to go away and come back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from corral.client import CorralClient
from corral.client.events import follow_events
from corral.config import Settings
from corral.model import protocol
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store
from tests.api.conftest import basic, sqlite_copy
from tests.api.test_fast_paths import FACTS

WAIT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Serving:
    """One server process's worth of application, served by uvicorn on a fixed loopback port; restartable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers: dict[str, str] = {}
        self.keys = ("", "")
        self.app: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        store = open_store(self.settings)
        keys = ensure_admin_key(store, self.settings.data_dir)
        if keys is not None:
            self.keys = keys
            self.headers = basic(*keys)
        ensure_default_environment(store)
        self.app = create_app(self.settings, store)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + WAIT
        while not self._server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(WAIT)
        assert not self._thread.is_alive()
        self.app.state.store.engine.dispose()

    def http(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers or self.headers, timeout=WAIT)

    def socket(self, path: str, headers: dict[str, str] | None = None) -> ClientConnection:
        url = self.url.replace("http://", "ws://") + path
        return connect(url, additional_headers=headers or self.headers, open_timeout=WAIT)

    def publish(self, resource_type: str, n: int, environment_id: str | None = None) -> None:
        self.app.state.bus.publish(resource_type, "tick", {"id": f"t{n}", "n": n}, environment_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[Serving]:
    data_dir = tmp_path_factory.mktemp("resume")
    settings = Settings(
        data_dir=data_dir,
        database_url=sqlite_copy(migrated_sqlite, data_dir),
        heartbeat_seconds=5.0,
        host_grace_seconds=60.0,
    )
    serving = Serving(settings)
    serving.start()
    yield serving
    serving.stop()


def _current(server: Serving, headers: dict[str, str] | None = None) -> int:
    with server.http(headers) as http:
        return int(http.get("/v1/events", params={"limit": 1}).json()["version"])


def _messages(ws: ClientConnection, until: Any, timeout: float = WAIT) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        assert time.monotonic() < deadline, got[-5:]
        got.append(json.loads(ws.recv(timeout=deadline - time.monotonic())))
    return got


def _ticks(messages: list[dict[str, Any]], resource_type: str) -> list[int]:
    return [m["data"]["n"] for m in messages if m.get("resource_type") == resource_type]


def test_replay_then_live_has_no_gap_and_no_duplicate(server: Serving) -> None:
    start = _current(server)
    total = 600
    connected = threading.Event()

    def publish() -> None:
        for n in range(total):
            server.publish("replay-test", n)
            if n == 200:
                connected.wait(WAIT)  # the rest is published while (and after) the client connects
            time.sleep(0.001)

    publisher = threading.Thread(target=publish)
    publisher.start()
    while _current(server) < start + 150:
        time.sleep(0.01)
    with server.socket(f"/v1/events?since_version={start}") as ws:
        connected.set()
        got = _messages(ws, lambda got: len(_ticks(got, "replay-test")) == total)
    publisher.join(WAIT)
    assert _ticks(got, "replay-test") == list(range(total))
    versions = [m["version"] for m in got if m["type"] != "bookmark"]
    assert versions == sorted(set(versions)) and versions[0] > start
    bookmarks = [m for m in got if m["type"] == "bookmark"]
    assert len(bookmarks) == 1  # after the replay: the version everything before was sent up to


def test_a_version_the_history_no_longer_keeps_is_answered_resync_required(server: Serving) -> None:
    events = server.app.state.event_store
    keep = events.keep
    events.keep = 5
    try:
        start = _current(server)
        for n in range(20):
            server.publish("prune-test", n)
        while _current(server) < start + 20:
            time.sleep(0.01)
        _current(server)  # its flush keeps (and prunes) the twenty
    finally:
        events.keep = keep
    newest = _current(server)
    for since in (start, newest + 1000):  # pruned; newer than anything given out
        with server.socket(f"/v1/events?since_version={since}") as ws:
            first = json.loads(ws.recv(timeout=WAIT))
            assert first["type"] == "resync-required", (since, newest, first, events.pruned_through)
            assert first["version"] >= newest and first["reason"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4410
    with server.socket(f"/v1/events?since_version={newest}") as ws:  # the newest is still fine
        first = json.loads(ws.recv(timeout=WAIT))
        assert first["type"] == "bookmark" and first["version"] >= newest
    with server.socket("/v1/events?since_version=soon") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT)
    assert (
        closed.value.rcvd is not None and closed.value.rcvd.code == 4422 and "since_version" in closed.value.rcvd.reason
    )
    with server.http() as http:
        response = http.get("/v1/containers", params={"watch": "true", "since_version": "1"})
        assert response.status_code == 410 and response.json()["field"] == "since_version"
        assert http.get("/v1/hosts", params={"watch": "true", "since_version": "-1"}).status_code == 422


def _watch(http: httpx.Client, path: str, params: dict[str, str], until: Any) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    with http.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for line in response.iter_lines():
            lines.append(json.loads(line))
            if until(lines):
                return lines
    raise AssertionError(lines)


def test_a_watch_on_containers_and_services_sees_a_scale_change(server: Serving) -> None:
    with server.http() as http:
        token = http.post("/v1/environments/default/registration-tokens", json={}).json()["token"]
        body = {"token": token, "name": "watch-edge", "labels": {}, "facts": {"arch": "amd64"}}
        creds = http.post("/v1/agent/register", json=body, headers={"Authorization": ""}).json()
        agent_headers = basic(creds["access_key"], creds["secret_key"])
        with server.socket("/v1/agent", agent_headers) as agent:
            agent.send(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
            hosts = _watch(http, "/v1/hosts", {}, lambda lines: lines[-1]["type"] == "bookmark")
            assert {line["object"]["name"] for line in hosts if line["type"] == "ADDED"} >= {"watch-edge"}
            compose = "services:\n  web:\n    image: nginx\n"
            stack = http.post("/v1/stacks", json={"name": "watched", "compose": compose}).json()
            web = stack["services"][0]
            deadline = time.monotonic() + WAIT
            while True:
                listed = http.get("/v1/containers", params={"stack": "watched", "environment": "default"})
                if len(listed.json()["data"]) == 1:
                    break
                assert time.monotonic() < deadline, listed.text
                time.sleep(0.05)
            version = listed.headers["X-Corral-Version"]
            scaled: list[int] = []

            def scale() -> None:
                time.sleep(0.3)  # once the watch is open
                with server.http() as other:
                    scaled.append(other.post(f"/v1/services/{web['id']}/scale", json={"scale": 3}).status_code)

            scaler = threading.Thread(target=scale)
            scaler.start()
            params = {"since_version": version, "environment": "default", "stack": "watched"}

            def added(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [line["object"] for line in lines if line["type"] == "ADDED"]

            lines = _watch(http, "/v1/containers", params, lambda lines: len(added(lines)) >= 2)
            scaler.join(WAIT)
            assert scaled == [200]
            assert {c["service"] for c in added(lines)} == {"web"} and len(added(lines)) == 2
            listed_ids = {c["id"] for c in listed.json()["data"]}
            assert not listed_ids & {c["id"] for c in added(lines)}  # nothing the list had comes again as ADDED
            assert all(line["version"] > int(version) for line in lines if line["type"] != "bookmark")
            services = _watch(
                http,
                "/v1/services",
                params,
                lambda lines: any(line["type"] == "MODIFIED" and line["object"]["scale"] == 3 for line in lines),
            )
            assert {line["object"]["name"] for line in services if line["type"] != "bookmark"} == {"web"}
            now = http.get("/v1/containers", params={"stack": "watched", "environment": "default"}).json()["data"]
            by_id = {c["id"]: c for c in now}
            assert all(by_id[c["id"]]["service"] == c["service"] for c in added(lines))


def test_a_caller_of_another_environment_sees_nothing_of_this_one(server: Serving) -> None:
    with server.http() as http:
        other = http.post("/v1/environments", json={"name": "elsewhere"}).json()
        key = http.post("/v1/environments/elsewhere/keys", json={"role": "member"}).json()
    outsider = basic(key["access_key"], key["secret_key"])
    start = _current(server)
    default_id = server.app.state.store.get_environment("default").id
    server.publish("rights-test", 1, default_id)
    server.publish("rights-test", 2, other["id"])
    server.publish("rights-test", 3, None)
    with server.socket(f"/v1/events?since_version={start}", outsider) as ws:
        got = _messages(ws, lambda got: bool(got) and got[-1]["type"] == "bookmark")
    assert _ticks(got, "rights-test") == [2]
    assert {m["environment_id"] for m in got if m["type"] != "bookmark"} == {other["id"]}
    with server.socket(f"/v1/events?since_version={start}&environment=default", outsider) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    with server.http(outsider) as http:
        lines = _watch(http, "/v1/containers", {}, lambda lines: lines[-1]["type"] == "bookmark")
        assert [line["type"] for line in lines] == ["bookmark"]  # its environment has no container
        hosts = _watch(http, "/v1/hosts", {}, lambda lines: lines[-1]["type"] == "bookmark")
        assert [line["type"] for line in hosts] == ["bookmark"]
        assert http.get("/v1/containers", params={"watch": "true", "environment": "default"}).status_code == 404


def test_the_client_follows_across_a_restart_without_loss_or_duplicate(server: Serving) -> None:
    start = _current(server)
    got: list[dict[str, Any]] = []
    failed: list[BaseException] = []
    client = CorralClient(server.url, headers=server.headers)

    def follow() -> None:
        try:
            for event in follow_events(client, since_version=start, give_up_after=WAIT):
                if event.get("resource_type") == "restart-test":
                    got.append(event)
                    if event["data"]["n"] == 19:
                        return
        except BaseException as exc:
            failed.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    for n in range(10):
        server.publish("restart-test", n)
    deadline = time.monotonic() + WAIT
    while len(got) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop()  # a graceful stop keeps every event published
    server.start()
    for n in range(10, 20):
        server.publish("restart-test", n)
    follower.join(WAIT)
    client.close()
    assert not failed, failed
    assert [e["data"]["n"] for e in got] == list(range(20))
    versions = [e["version"] for e in got]
    assert versions == sorted(set(versions))


def test_corral_events_follow_prints_the_history_then_what_comes(server: Serving) -> None:
    server.publish("cli-test", 0)
    _current(server)  # kept: the history shows it
    env = {**os.environ, "CORRAL_URL": server.url, "CORRAL_ACCESS_KEY": server.keys[0]}
    env["CORRAL_SECRET_KEY"] = server.keys[1]
    command = [sys.executable, "-m", "corral", "events", "-f", "--type", "cli-test", "--format", "json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict[str, Any]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + WAIT
        while not lines:  # the history came: following has begun
            assert time.monotonic() < deadline and process.poll() is None, process.stderr
            time.sleep(0.05)
        for n in (1, 2):
            server.publish("cli-test", n)
            server.publish("not-this-type", n)
        while len(lines) < 3:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(WAIT)
    assert [(e["resource_type"], e["data"]["n"]) for e in lines] == [("cli-test", 0), ("cli-test", 1), ("cli-test", 2)]
