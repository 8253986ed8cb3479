"""`POST /v1/stacks/plan` (`corral up --plan`) through the in-process server: the preview of a new stack and of a
change, the same 4xx as `up` for bad files, nothing stored or published; and its placements are the ones the next
pass then makes (agents connected over the real websocket, reporting nothing)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.model import protocol
from corral.store.changes import write_version
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_fast_paths import FACTS

COMPOSE = (
    "services:\n"
    "  web:\n    image: corral/busybox\n    ports: ['8080:80']\n"
    "    environment:\n      LOG: info\n      DB_PASSWORD: hunter2\n"
    "  worker:\n    image: corral/busybox\n"
)
RANCHER = "services:\n  web:\n    scale: 3\n  worker:\n    scale: 2\n"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Agents that speak only when spoken to: a long heartbeat deadline keeps their hosts active meanwhile."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=5.0, host_grace_seconds=60.0)


def _body(compose: str = COMPOSE, rancher: str | None = RANCHER, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "shop", "compose": compose, **extra}
    if rancher is not None:
        body["rancher_compose"] = rancher
    return body


def _plan(api: TestClient, **kwargs: Any) -> Any:
    return api.post("/v1/stacks/plan", json=_body(**kwargs))


@contextlib.contextmanager
def _hosts(api: TestClient, names: list[str]) -> Any:
    """Registered hosts whose agents are connected (so they are active), none reporting a container."""
    with contextlib.ExitStack() as stack:
        for name in names:
            creds = register(api, name)
            ws = stack.enter_context(
                api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"]))
            )
            ws.send_text(protocol.Message(protocol.HELLO, {"facts": {**FACTS, "hostname": name}}).encode())
            assert _recv(ws).type == protocol.WELCOME
        _until(lambda: sum(h["state"] == "active" for h in api.get("/v1/hosts").json()["data"]) == len(names))
        yield


def _until(check: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError("not reached")


def _writing_nothing(call: Any) -> Any:
    """call()'s answer, checked to have written nothing. The orchestrator and the fake agents still write after a
    stack turns running (states, reasons): wait until the store has been quiet for a second, and try again when a
    write came in during the call anyway; a call that writes itself fails every attempt."""
    for _ in range(5):
        version = write_version()
        time.sleep(1.0)
        if write_version() != version:
            continue
        answer = call()
        if write_version() == version:
            return answer
    raise AssertionError("the store was written during each of five calls")


def _placed(api: TestClient) -> set[tuple[str, int, str]]:
    return {(c["service"], c["index"], c["host"]) for c in api.get("/v1/containers").json()["data"]}


def test_a_new_stack_is_previewed_and_nothing_changes(api: TestClient) -> None:
    events_before = api.get("/v1/events", params={"limit": 500}).json()
    version = write_version()
    response = _plan(api)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["create"] is True and preview["stack"] == "shop" and preview["changes"] is True
    assert [(s["name"], s["action"]) for s in preview["services"]] == [("web", "create"), ("worker", "create")]
    assert preview["containers"] == []  # no host: nothing can be created, and the preview says why
    assert preview["unplaced"] == [
        {"service": "web", "indexes": [1, 2, 3], "reason": "#1-#3: no hosts in the environment"},
        {"service": "worker", "indexes": [1, 2], "reason": "#1-#2: no hosts in the environment"},
    ]
    assert write_version() == version  # the store was not written
    assert api.get("/v1/stacks").json()["data"] == []
    assert api.get("/v1/events", params={"limit": 500}).json() == events_before


def test_bad_files_are_the_same_4xx_as_up(api: TestClient) -> None:
    for compose in (
        "services:\n  web:\n    image: x\n    imagee: y\n",
        "services:\n  web:\n    image: x\n    ports: ['abc']\n",
        "services: [\n",
    ):
        planned = _plan(api, compose=compose, rancher=None)
        up = api.put("/v1/stacks", json=_body(compose=compose, rancher=None))
        assert planned.status_code == up.status_code == 422
        assert planned.json()["field"] == up.json()["field"] and planned.json()["message"] == up.json()["message"]
    bad_name = api.post("/v1/stacks/plan", json={"name": "Bad Name", "compose": COMPOSE})
    assert bad_name.status_code == 422 and bad_name.json()["field"] == "name"
    assert api.post("/v1/stacks/plan", json={"name": "x", "compose": COMPOSE, "environment": "nope"}).status_code == 404
    assert api.get("/v1/stacks").json()["data"] == []


def test_placements_are_what_the_next_pass_does(api: TestClient) -> None:
    with _hosts(api, ["h1", "h2"]):
        preview = _plan(api).json()
        planned = {(c["service"], c["index"], c["host"]) for c in preview["containers"] if c["action"] == "create"}
        # port 8080 fits once per host: the third web cannot be placed, grouped as the service's reason is
        assert {(s, i) for s, i, _ in planned} == {("web", 1), ("web", 2), ("worker", 1), ("worker", 2)}
        assert {h for s, _, h in planned if s == "web"} == {"h1", "h2"}
        assert [u["service"] for u in preview["unplaced"]] == ["web"] and preview["unplaced"][0]["indexes"] == [3]
        assert "8080/tcp" in preview["unplaced"][0]["reason"]
        assert _placed(api) == set()
        assert api.put("/v1/stacks", json=_body()).status_code == 201
        placed = _until(lambda: p if len(p := _placed(api)) == 4 else None)
        assert placed == planned
        # the reason is stored with the placements (one transaction per environment): this wait returns at once
        web = _until(
            lambda: next(
                (s for s in api.get("/v1/services").json()["data"] if s["name"] == "web" and s["reason"]), None
            )
        )
        assert web["reason"] == preview["unplaced"][0]["reason"]

        # a change: one field, a secret-looking value hidden; scale down removes the highest index
        changed = COMPOSE.replace("LOG: info", "LOG: debug").replace("hunter2", "hunter3")
        rancher = "services:\n  web:\n    scale: 3\n  worker:\n    scale: 1\n"
        again = _writing_nothing(lambda: _plan(api, compose=changed, rancher=rancher)).json()
        assert again["create"] is False
        services = {s["name"]: s for s in again["services"]}
        assert services["web"]["action"] == "change"
        assert {(c["field"], c["old"], c["new"]) for c in services["web"]["changes"]} == {
            ("launch.environment.LOG", "info", "debug"),
            ("launch.environment.DB_PASSWORD", "(hidden)", "(hidden)"),
        }
        assert "hunter" not in str(again)
        assert services["worker"]["changes"] == [{"field": "scale", "old": "2", "new": "1"}]
        recreated = {(c["service"], c["index"], c["host"]) for c in again["containers"] if c["action"] == "recreate"}
        assert recreated == {p for p in placed if p[0] == "web"}  # in place, on the same hosts
        removed = [(c["service"], c["index"]) for c in again["containers"] if c["action"] == "remove"]
        assert removed == [("worker", 2)]

        # a removed service: every container goes
        only_web = _plan(api, compose=COMPOSE.split("  worker:")[0], rancher=None).json()
        assert {s["name"]: s["action"] for s in only_web["services"]}["worker"] == "remove"
        gone = {(c["service"], c["index"]) for c in only_web["containers"] if c["action"] == "remove"}
        assert gone >= {("worker", 1), ("worker", 2)}
        assert _placed(api) == placed  # still nothing changed


def test_plan_unchanged_stack_says_nothing_changes(api: TestClient) -> None:
    assert api.put("/v1/stacks", json=_body()).status_code == 201
    preview = _plan(api).json()
    assert preview["changes"] is False
    assert {s["action"] for s in preview["services"]} == {"unchanged"}


def test_load_balancers_and_external_services_are_previewed(api: TestClient) -> None:
    compose = (
        "version: '2'\nservices:\n"
        "  lb:\n    image: rancher/lb-service-haproxy:v0.9.1\n    ports: ['80:80']\n"
        "  web:\n    image: corral/busybox\n"
        "  ext:\n    image: rancher/external-service\n"
    )
    rancher = (
        "version: '2'\nservices:\n"
        "  lb:\n    lb_config:\n      port_rules:\n      - source_port: 80\n        target_port: 8080\n"
        "        service: web\n"
        "  ext:\n    external_ips: [198.18.9.9]\n"
    )
    response = _plan(api, compose=compose, rancher=rancher)
    assert response.status_code == 200, response.text
    assert {s["name"]: s["action"] for s in response.json()["services"]} == {
        "lb": "create",
        "web": "create",
        "ext": "create",
    }
    assert "ext" not in {u["service"] for u in response.json()["unplaced"]}  # it runs no container
