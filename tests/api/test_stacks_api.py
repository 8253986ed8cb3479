"""Stacks, services and containers through the in-process API (no agents): validation, storage, reasons."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.conftest import basic
from tests.api.test_api import _recv, register
from tests.api.test_fast_paths import FACTS

COMPOSE = "version: '2'\nservices:\n  web:\n    image: corral/busybox\n    ports: ['8080:80']\n"
RANCHER = "services:\n  web:\n    scale: 2\n"


def _up(api: TestClient, compose: str = COMPOSE, **extra: object):
    return api.put("/v1/stacks", json={"name": "shop", "compose": compose, **extra})


def test_up_creates_then_updates_only_what_changed(api: TestClient) -> None:
    created = _up(api)
    assert created.status_code == 201, created.text
    assert created.json()["changed_services"] == ["web"]
    again = _up(api)
    assert again.status_code == 200 and again.json()["changed_services"] == []
    changed = _up(api, COMPOSE.replace("8080:80", "8081:80"))
    assert changed.json()["changed_services"] == ["web"]
    assert [s["ports"] for s in changed.json()["services"]] == [["8081:80/tcp"]]


def test_bad_compose_is_422_and_stores_nothing(api: TestClient) -> None:
    for compose, part in [
        ("services:\n  web:\n    image: x\n    imagee: y\n", "imagee"),
        ("services:\n  web:\n    image: x\n    ports: ['abc']\n", "ports"),
        ("services:\n  web:\n    command: sleep 1\n", "image"),
        ("services: [\n", "docker-compose.yml"),
    ]:
        response = _up(api, compose)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["field"].startswith("docker-compose.yml") and part in body["field"] + body["message"]
    response = _up(api, rancher_compose="services:\n  web:\n    scale: lots\n")
    assert response.status_code == 422 and "scale" in response.json()["message"]
    assert api.get("/v1/stacks").json()["data"] == []


def test_without_hosts_every_index_says_why(api: TestClient) -> None:
    stack = _up(api, rancher_compose="version: '2'\nservices:\n  web:\n    scale: 2\n").json()
    service_id = stack["services"][0]["id"]
    deadline = time.time() + 10
    reason = ""
    while time.time() < deadline and not reason:
        reason = api.get(f"/v1/services/{service_id}").json()["reason"]
        time.sleep(0.1)
    assert reason == "#1-#2: no hosts in the environment"  # one sentence for both indexes
    service = api.get(f"/v1/services/{service_id}").json()
    assert service["unplaced"] == [{"indexes": [1, 2], "reason": "no hosts in the environment"}]
    assert api.get(f"/v1/stacks/{stack['id']}").json()["state"] == "activating"


def test_scale_is_validated(api: TestClient) -> None:
    service_id = _up(api).json()["services"][0]["id"]
    assert api.post(f"/v1/services/{service_id}/scale", json={"scale": -1}).json()["field"] == "scale"
    assert api.post(f"/v1/services/{service_id}/scale", json={"scale": 1001}).status_code == 422
    assert api.post(f"/v1/services/{service_id}/scale", json={"scale": "x"}).status_code == 422
    assert api.post(f"/v1/services/{service_id}/scale", json={"scale": 3}).json()["scale"] == 3
    assert api.post("/v1/services/svc-nope/scale", json={"scale": 3}).status_code == 404


def test_delete_removes_the_stack(api: TestClient) -> None:
    stack_id = _up(api).json()["id"]
    assert api.delete(f"/v1/stacks/{stack_id}").status_code == 204
    assert api.get(f"/v1/stacks/{stack_id}").status_code == 404
    assert api.get("/v1/containers").json()["data"] == []


def test_streams_of_unknown_containers_are_404(api: TestClient) -> None:
    assert api.get("/v1/containers/c-nope/logs").status_code == 404
    assert api.post("/v1/containers/c-nope/exec", json={"cmd": ["true"]}).status_code == 404
    assert api.post("/v1/containers/c-nope/exec", json={"cmd": []}).status_code == 422


def test_the_stack_list_names_services_without_their_containers_unless_asked(api: TestClient) -> None:
    """A page of stacks would otherwise hold every container of the environment: the stack and service lists show
    each service with its counts; `include=containers` embeds the containers exactly as the stack's own view does."""
    compose = "services:\n  web:\n    image: corral/busybox\n  db:\n    image: corral/busybox\n"
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        created = api.put("/v1/stacks", json={"name": "shop", "compose": compose, "rancher_compose": RANCHER})
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 10  # placed by the orchestrator's next pass
        full = api.get(f"/v1/stacks/{created.json()['id']}").json()
        while sum(len(s["containers"]) for s in full["services"]) < 3:
            assert time.monotonic() < deadline, full
            time.sleep(0.05)
            full = api.get(f"/v1/stacks/{created.json()['id']}").json()
    [listed] = api.get("/v1/stacks").json()["data"]
    assert [s for s in listed["services"] if "containers" in s] == []

    def names(view: dict) -> list[tuple[str, str, int, list[str]]]:
        return [
            (s["id"], s["name"], s["scale"], sorted(c["id"] for c in s.get("containers", []))) for s in view["services"]
        ]

    assert [n[:3] for n in names(listed)] == [n[:3] for n in names(full)]
    assert (listed["id"], listed["name"], listed["environment_id"]) == (
        full["id"],
        full["name"],
        full["environment_id"],
    )
    [embedded] = api.get("/v1/stacks", params={"include": "containers"}).json()["data"]
    assert names(embedded) == names(full)
    services = api.get("/v1/services").json()["data"]
    assert [s for s in services if "containers" in s] == [] and [n[:3] for n in names({"services": services})] == [
        n[:3] for n in names(full)
    ]
    with_containers = api.get("/v1/services", params={"include": "containers"}).json()["data"]
    assert names({"services": with_containers}) == names(full)
    wrong = api.get("/v1/stacks", params={"include": "containers,hosts"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "include" and "hosts" in wrong.json()["message"]
