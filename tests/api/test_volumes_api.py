"""Volumes through the real API with a fake agent on the websocket: the hosts' reports listed per environment with
state, scope and holders (filters, paging), creation and removal sent to the agents as `volume` requests, 409
naming the containers while in use (nothing sent), bad input 422, and a removed stack's volumes removed unless
kept."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.model import protocol
from corral.model.volumes import ENVIRONMENT_LABEL, SCOPE_LABEL, STACK_LABEL
from tests.api.conftest import basic
from tests.api.test_api import register

DB = {"name": "shop_data", "labels": {SCOPE_LABEL: "stack", STACK_LABEL: "shop"}, "containers": ["shop-db-1"]}
IDLE = {"name": "shop_cache_1", "labels": {SCOPE_LABEL: "container", STACK_LABEL: "shop"}, "containers": []}
HAND = {"name": "backups", "driver": "local"}


def report(ws: Any, *volumes: dict[str, Any]) -> None:
    ws.send_text(protocol.Message(protocol.VOLUMES, {"volumes": list(volumes)}).encode())


@contextmanager
def agent(api: TestClient, name: str) -> Iterator[tuple[Any, str]]:
    creds = register(api, name)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64", "cpus": 2}}).encode())
        ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": []}).encode())
        yield ws, creds["host_id"]


def listed(api: TestClient, **params: str) -> list[dict[str, Any]]:
    response = api.get("/v1/volumes", params={"environment": "default", **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def eventually(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 10
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def answer_volume_requests(ws: Any, count: int, error: str | None = None) -> list[dict[str, Any]]:
    """Play the agent: answer the next `count` volume requests with an `end` (and the error given)."""
    requests = []
    while len(requests) < count:
        message = protocol.decode(ws.receive_text())
        if message.type != protocol.VOLUME:
            continue
        requests.append(message.data)
        end = {"request_id": message.data["request_id"], "exit_code": 1 if error else 0, "error": error}
        ws.send_text(protocol.Message(protocol.END, end).encode())
    return requests


def test_hosts_reports_are_listed_with_state_scope_and_holders(api: TestClient) -> None:
    with agent(api, "one") as (one, one_id), agent(api, "two") as (two, _):
        report(one, DB, HAND)
        report(two, IDLE, HAND)
        volumes = eventually(lambda: len(listed(api)) == 3 and listed(api))
        by_name = {v["name"]: v for v in volumes}
        assert [v["name"] for v in volumes] == ["backups", "shop_cache_1", "shop_data"]
        assert (by_name["shop_data"]["state"], by_name["shop_data"]["scope"]) == ("active", "stack")
        assert by_name["shop_data"]["containers"] == ["shop-db-1"]
        assert by_name["shop_cache_1"]["state"] == "inactive" and by_name["shop_cache_1"]["scope"] == "container"
        assert [h["name"] for h in by_name["backups"]["hosts"]] == ["one", "two"]
        assert by_name["backups"]["scope"] == "environment"
        assert [v["name"] for v in listed(api, stack="shop")] == ["shop_cache_1", "shop_data"]
        assert [v["name"] for v in listed(api, host="two")] == ["backups", "shop_cache_1"]
        assert [v["name"] for v in listed(api, host=one_id)] == ["backups", "shop_data"]
        assert [v["name"] for v in listed(api, state="active")] == ["shop_data"]
        page = api.get("/v1/volumes", params={"environment": "default", "limit": 2}).json()
        rest = api.get("/v1/volumes", params={"environment": "default", "continue": page["continue"]}).json()
        assert [v["name"] for v in page["data"] + rest["data"]] == ["backups", "shop_cache_1", "shop_data"]
        inspected = api.get("/v1/volumes/shop_data", params={"environment": "default"})
        assert inspected.status_code == 200 and inspected.json()["hosts"][0]["containers"] == ["shop-db-1"]
    # both agents gone: what they held is detached (their reports are not current)
    assert eventually(lambda: {v["state"] for v in listed(api)} == {"detached"})


def test_removing_a_volume_in_use_is_refused_naming_its_containers(api: TestClient) -> None:
    with agent(api, "one") as (ws, _):
        report(ws, DB)
        eventually(lambda: listed(api))
        response = api.delete("/v1/volumes/shop_data", params={"environment": "default"})
        assert response.status_code == 409, response.text
        assert "in use by shop-db-1" in response.json()["message"]
        assert [v["state"] for v in listed(api)] == ["active"]
        assert api.delete("/v1/volumes/nothing_here", params={"environment": "default"}).status_code == 404


def test_create_and_remove_go_to_the_agents(api: TestClient) -> None:
    with agent(api, "one") as (one, _), agent(api, "two") as (two, _):
        eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active", "active"])
        body = {"environment": "default", "name": "shared", "driver_opts": {"type": "tmpfs", "device": "tmpfs"}}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            created = pool.submit(api.post, "/v1/volumes", json=body)
            asked = answer_volume_requests(one, 1) + answer_volume_requests(two, 1)
            response = created.result(timeout=30)
        assert response.status_code == 201, response.text
        assert [h["error"] for h in response.json()["hosts"]] == ["", ""]
        assert {a["action"] for a in asked} == {"create"}
        assert asked[0]["driver_opts"] == {"type": "tmpfs", "device": "tmpfs"}
        assert asked[0]["labels"][SCOPE_LABEL] == "environment"
        report(one, {"name": "shared", "labels": asked[0]["labels"]})
        report(two, {"name": "shared", "labels": asked[1]["labels"]})
        eventually(lambda: listed(api) and len(listed(api)[0]["hosts"]) == 2)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            removed = pool.submit(api.delete, "/v1/volumes/shared", params={"environment": "default"})
            asked = answer_volume_requests(one, 1) + answer_volume_requests(two, 1)
            assert removed.result(timeout=30).status_code == 204
        assert [(a["action"], a["name"]) for a in asked] == [("remove", "shared"), ("remove", "shared")]


def test_create_on_named_hosts_only_and_errors_named(api: TestClient) -> None:
    with agent(api, "one") as (one, _), agent(api, "two") as (_two, _):
        eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active", "active"])
        body = {"environment": "default", "name": "logs", "hosts": ["one"]}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            created = pool.submit(api.post, "/v1/volumes", json=body)
            answer_volume_requests(one, 1, error="driver nfs not found")
            response = created.result(timeout=30)
        assert response.status_code == 409 and "one: driver nfs not found" in response.json()["message"]
        unknown = api.post("/v1/volumes", json={**body, "hosts": ["nowhere"]})
        assert unknown.status_code == 422 and unknown.json()["field"] == "hosts"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "-bad"}, "name"),
        ({"name": "a"}, "name"),
        ({"name": "ok_name", "driver": "bad driver!"}, "driver"),
        ({"name": "ok_name", "driver_opts": {"o": True}}, "driver_opts.o"),
        ({"name": "ok_name", "size": 3}, None),
    ],
)
def test_bad_input_is_refused_with_the_field_named(api: TestClient, body: dict[str, Any], field: str | None) -> None:
    response = api.post("/v1/volumes", json={"environment": "default", **body})
    assert response.status_code == 422, response.text
    if field is not None:
        assert response.json()["field"] == field
    assert api.get("/v1/volumes", params={"state": "bogus"}).status_code == 422
    assert listed(api) == []


def test_no_connected_host_answers_409(api: TestClient) -> None:
    register(api, "silent")
    response = api.post("/v1/volumes", json={"environment": "default", "name": "data"})
    assert response.status_code == 409 and "no host" in response.json()["message"]


def test_a_removed_stacks_volumes_go_unless_kept(api: TestClient) -> None:
    compose = "services:\n  db:\n    image: corral/busybox\n    volumes: [data:/data]\nvolumes:\n  data: {}\n"
    volumes = api.app.state.volumes  # type: ignore[attr-defined]
    with agent(api, "one") as (ws, _):
        for name, keep in (("shop", False), ("kept", True)):
            stack = api.put("/v1/stacks", json={"name": name, "compose": compose, "environment": "default"})
            assert stack.status_code == 201, stack.text
            params = {"keep_volumes": "true"} if keep else {}
            assert api.delete(f"/v1/stacks/{stack.json()['id']}", params=params).status_code == 204
        env_id = api.get("/v1/environments/default").json()["id"]
        assert set(volumes.pending_stacks) == {(env_id, "shop")}
        labels = {SCOPE_LABEL: "stack", STACK_LABEL: "shop", ENVIRONMENT_LABEL: env_id}
        report(
            ws,
            {"name": "shop_data", "labels": labels},
            {"name": "kept_data", "labels": {**labels, STACK_LABEL: "kept"}},
        )
        eventually(lambda: len(listed(api)) == 2)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            swept = pool.submit(lambda: api.portal.call(volumes.sweep))  # type: ignore[attr-defined]
            asked = answer_volume_requests(ws, 1)
            swept.result(timeout=30)
        assert [(a["action"], a["name"]) for a in asked] == [("remove", "shop_data")]
