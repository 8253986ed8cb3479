"""Paged, filtered collections through the real application (server/views/paging.py): `limit` and `continue` walk a
collection that changes between pages without skipping or repeating what lasts; filters narrow containers by
service, host and state; an unpaged call keeps its old shape; bad tokens are 422 naming `continue`."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import protocol
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_fast_paths import FACTS, _reported

COMPOSE = "services:\n  web:\n    image: nginx\n  db:\n    image: redis\n"
RANCHER = "services:\n  web:\n    scale: 2\n"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The test's agent speaks only when a message comes: under load, the suite's 0.4 s heartbeat deadline would
    mark its host gone (and nothing be placed) while it waits."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=5.0, host_grace_seconds=60.0)


def _stack(api: TestClient, name: str) -> dict[str, Any]:
    created = api.post("/v1/stacks", json={"name": name, "compose": "services:\n  s:\n    image: nginx\n"})
    assert created.status_code == 201, created.text
    return created.json()


def _walk(api: TestClient, path: str, limit: int, between: Any = None) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"continue": token} if token else {})}
        body = api.get(path, params=params).json()
        assert set(body) == {"data", "continue"} and len(body["data"]) <= limit
        seen.extend(body["data"])
        token = body["continue"]
        if token is None:
            return seen
        if between is not None:
            between()


@pytest.mark.parametrize("seed", [1, 2])
def test_stack_pages_under_concurrent_inserts_and_removals(api: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    start = {_stack(api, f"s{rng.randrange(10**6):06d}")["name"] for _ in range(9)}
    removed: set[str] = set()
    inserted: set[str] = set()

    def change() -> None:  # between pages: a stack sorting anywhere appears, another goes
        inserted.add(_stack(api, f"s{rng.randrange(10**6):06d}")["name"])
        current = api.get("/v1/stacks").json()["data"]
        gone = rng.choice(current)
        assert api.delete(f"/v1/stacks/{gone['id']}").status_code == 204
        removed.add(gone["name"])

    seen = [s["name"] for s in _walk(api, "/v1/stacks", rng.randint(1, 3), change)]
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert start - removed <= set(seen) <= start | inserted
    unpaged = api.get("/v1/stacks").json()
    assert set(unpaged) == {"data"}  # the old shape when no page is asked for
    assert [s["name"] for s in unpaged["data"]] == [s["name"] for s in _walk(api, "/v1/stacks", 2)]
    services = _walk(api, "/v1/services", 4)
    assert [s["id"] for s in services] == [s["id"] for s in api.get("/v1/services").json()["data"]]
    environments = _walk(api, "/v1/environments", 1)
    assert [e["name"] for e in environments] == [e["name"] for e in api.get("/v1/environments").json()["data"]]


def test_container_filters_and_pages(api: TestClient) -> None:
    creds = register(api, "edge-1")
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        desired: list[dict[str, Any]] = []
        for _ in range(20):
            message = _recv(ws)
            if message.type == protocol.DESIRED and len(desired := message.data["containers"]) == 3:
                break
        slots = sorted((d["slot"] for d in desired), key=lambda s: (s["service"], s["index"]))
        db, web1, web2 = slots
        reports = [_reported(web1, "running", "w1"), _reported(web2, "exited", "w2"), _reported(db, "running", "d")]
        ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": reports}).encode())
        for _ in range(100):  # the snapshot is stored by the server's event loop
            states = {c["docker_id"]: c["state"] for c in api.get("/v1/containers").json()["data"]}
            if states == {"w1": "running", "w2": "exited", "d": "running"}:
                break
        assert states == {"w1": "running", "w2": "exited", "d": "running"}

        def ids(**params: str) -> list[str]:
            response = api.get("/v1/containers", params=params)
            assert response.status_code == 200, response.text
            return [c["docker_id"] for c in response.json()["data"]]

        assert ids(service="web") == ["w1", "w2"]
        web_id = next(s["id"] for s in stack.json()["services"] if s["name"] == "web")
        assert ids(service=web_id) == ["w1", "w2"]
        assert ids(state="running") == ["d", "w1"]
        assert ids(state="exited", service="web") == ["w2"]
        assert ids(host="edge-1") == ids(host=creds["host_id"]) == ["d", "w1", "w2"]
        assert ids(host="elsewhere") == []
        assert ids(environment="default", stack="app", service="db") == ["d"]
        assert [c["docker_id"] for c in _walk(api, "/v1/containers", 1)] == ["d", "w1", "w2"]
        assert [h["name"] for h in _walk(api, "/v1/hosts", 1)] == ["edge-1"]
        assert api.get("/v1/hosts", params={"state": "disconnected"}).json()["data"] == []
        host_containers = _walk(api, f"/v1/hosts/{creds['host_id']}/containers", 2)
        assert sorted(c["docker_id"] for c in host_containers) == ["d", "w1", "w2"]


@pytest.mark.parametrize("path", ["/v1/containers", "/v1/services", "/v1/stacks", "/v1/hosts", "/v1/environments"])
def test_bad_tokens_and_limits_are_422(api: TestClient, path: str) -> None:
    for params in ({"continue": "not-a-token"}, {"limit": 0}, {"limit": 100000}):
        response = api.get(path, params=params)
        assert response.status_code == 422, (params, response.text)
    other = api.get("/v1/environments" if path != "/v1/environments" else "/v1/stacks", params={"limit": 1})
    _stack(api, "x1")
    _stack(api, "x2")
    token = api.get("/v1/stacks" if path != "/v1/stacks" else "/v1/environments", params={"limit": 1}).json()
    assert other.status_code == 200
    if token["continue"]:  # a token of another collection
        response = api.get(path, params={"continue": token["continue"]})
        assert response.status_code == 422 and "continue" in response.text


def test_events_continue_is_next(api: TestClient) -> None:
    for name in ("e1", "e2", "e3"):
        _stack(api, name)
    first = api.get("/v1/events", params={"limit": 1}).json()
    assert first["continue"] == str(first["next"])
    second = api.get("/v1/events", params={"limit": 1, "continue": first["continue"]}).json()
    assert second["data"][0]["event_id"] < first["data"][0]["event_id"]
    assert api.get("/v1/events", params={"continue": "x"}).status_code == 422
