"""Idempotency keys through the in-process API (issue 14): a mutating call sent again with its key is applied once
and answered with its first answer (a scale shows what that call set, not a later writer's value); the key with
another body gets 422; another caller's key of the same name is its own; the client sends a key on every write."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from corral.client import CorralClient

COMPOSE = "services:\n  a:\n    image: corral/busybox\n    command: [sleep, '1000']\n    scale: 1\n"


def _service_id(api: TestClient) -> str:
    stack = api.put("/v1/stacks", json={"environment": "default", "name": "idem", "compose": COMPOSE})
    assert stack.status_code in (200, 201), stack.text
    services = api.get("/v1/services", params={"environment": "default"})
    if services.status_code == 200:
        return str(next(s["id"] for s in services.json()["data"] if s["name"] == "a"))
    return str(stack.json()["services"][0]["id"])


def test_a_replayed_create_is_applied_once_and_answered_the_same(api: TestClient) -> None:
    first = api.post("/v1/environments", json={"name": "once"}, headers={"Idempotency-Key": "k-1"})
    again = api.post("/v1/environments", json={"name": "once"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert [e["name"] for e in api.get("/v1/environments").json()["data"]].count("once") == 1
    # without a key the same call is a new call: the name is taken now
    assert api.post("/v1/environments", json={"name": "once"}).status_code == 409


def test_a_key_reused_with_another_body_or_path_is_422(api: TestClient) -> None:
    assert api.post("/v1/environments", json={"name": "e1"}, headers={"Idempotency-Key": "k-2"}).status_code == 201
    other = api.post("/v1/environments", json={"name": "e2"}, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key", other.text
    assert "e2" not in [e["name"] for e in api.get("/v1/environments").json()["data"]]
    too_long = api.post("/v1/environments", json={"name": "e3"}, headers={"Idempotency-Key": "x" * 129})
    assert too_long.status_code == 422


def test_a_scale_answer_is_the_callers_own_even_after_another_writer(api: TestClient) -> None:
    service = _service_id(api)
    mine = api.post(f"/v1/services/{service}/scale", json={"scale": 3}, headers={"Idempotency-Key": "mine"})
    theirs = api.post(f"/v1/services/{service}/scale", json={"scale": 5}, headers={"Idempotency-Key": "theirs"})
    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    retried = api.post(f"/v1/services/{service}/scale", json={"scale": 3}, headers={"Idempotency-Key": "mine"})
    assert retried.json()["scale"] == mine.json()["scale"] == 3
    assert api.get(f"/v1/services/{service}").json()["scale"] == 5  # the retry did not apply 3 again


def test_another_callers_key_of_the_same_name_is_not_replayed(api: TestClient) -> None:
    assert api.post("/v1/environments", json={"name": "mine"}, headers={"Idempotency-Key": "same"}).status_code == 201
    anonymous = api.post(
        "/v1/environments", json={"name": "mine"}, headers={"Idempotency-Key": "same", "Authorization": "Basic eDp5"}
    )
    assert anonymous.status_code == 401, anonymous.text


def test_the_client_sends_one_key_per_write(api: TestClient) -> None:
    seen: list[tuple[str, str | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("Idempotency-Key")))
        return httpx.Response(201, json={"id": "x", "name": "n"})

    with CorralClient("http://test", "a", "b", transport=httpx.MockTransport(record)) as client:
        client.create_environment("n")
        client.create_environment("n")
    assert [m for m, _ in seen] == ["POST", "POST"]
    keys = [k for _, k in seen]
    assert all(keys) and keys[0] != keys[1]
