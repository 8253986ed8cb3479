"""`POST /v1/stacks/{id}/pull` (issue 18) against fake agents: one result per host and image (pulled, present,
failed with the engine's reason), a disconnected host skipped, unknown services refused, read-only refused."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.test_volumes_api import agent, eventually
from tests.security.conftest import add_user

PASSWORD = "s3cret-Pa55word-for-pulls"
IMAGES = ["corral/web:1", "registry.example.com:5000/db:2"]
COMPOSE = """
services:
  web:
    image: corral/web:1
    labels: {io.rancher.scheduler.global: 'true'}
  db:
    image: registry.example.com:5000/db:2
    labels: {io.rancher.scheduler.global: 'true'}
"""


def answer_pulls(ws: Any, outcomes: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Play the agent: answer the next `pull` request, image -> (status, id or reason); returns the request."""
    while True:
        message = protocol.decode(ws.receive_text())
        if message.type == protocol.PULL:
            break
    images: list[str] = message.data["images"]
    results = [
        {
            "image": image,
            "status": outcomes[image][0],
            "id": outcomes[image][1] if outcomes[image][0] != "failed" else "",
            "reason": outcomes[image][1] if outcomes[image][0] == "failed" else "",
        }
        for image in images
    ]
    end = {"request_id": message.data["request_id"], "exit_code": 0, "error": None, "results": results}
    ws.send_text(protocol.Message(protocol.END, end).encode())
    data: dict[str, Any] = message.data
    return data


def by_host_image(answer: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r["host"], r["image"]): (r["status"], r["id"] or r["reason"]) for r in answer["results"]}


def test_pull_asks_every_host_and_reports_each_answer(api: TestClient) -> None:
    for server in ("registry.example.com:5000", "other.example.com"):  # only the first is one the stack pulls from
        body = {"server": server, "username": "alice", "password": PASSWORD}
        assert api.post("/v1/environments/default/registries", json=body).status_code == 201
    with agent(api, "one") as (one, _):
        with agent(api, "two") as (two, _):
            eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active", "active"])
            stack = api.post("/v1/stacks", json={"name": "shop", "compose": COMPOSE})
            assert stack.status_code == 201, stack.text
            stack_id = stack.json()["id"]
            stacks = api.app.state.stacks  # type: ignore[attr-defined]
            assert eventually(lambda: len({s.slot.host_id for s in stacks.list_slots() if s.stack_id == stack_id}) == 2)

            viewer = add_user(api, "viewer", "default", "read-only")
            assert api.post(f"/v1/stacks/{stack_id}/pull", headers=viewer).status_code == 403
            unknown = api.post(f"/v1/stacks/{stack_id}/pull", json={"services": ["nope"]})
            assert unknown.status_code == 422 and unknown.json()["field"] == "services", unknown.text
            assert "nope" in unknown.json()["message"]

            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pulled = pool.submit(api.post, f"/v1/stacks/{stack_id}/pull")
                asked_one = answer_pulls(
                    one,
                    {
                        "corral/web:1": ("pulled", "sha256:aaa"),
                        "registry.example.com:5000/db:2": ("present", "sha256:bbb"),
                    },
                )
                asked_two = answer_pulls(
                    two,
                    {
                        "corral/web:1": ("failed", "manifest for corral/web:1 not found"),
                        "registry.example.com:5000/db:2": ("pulled", "x"),
                    },
                )
                response = pulled.result(timeout=30)
            assert response.status_code == 200, response.text
            assert sorted(asked_one["images"]) == sorted(asked_two["images"]) == sorted(IMAGES)
            wanted = [{"server": "registry.example.com:5000", "username": "alice", "password": PASSWORD}]
            assert asked_one["registries"] == asked_two["registries"] == wanted
            assert PASSWORD not in response.text
            answer = response.json()
            assert answer["stack"] == "shop" and answer["failed"] == 1
            assert by_host_image(answer) == {
                ("one", "corral/web:1"): ("pulled", "sha256:aaa"),
                ("one", "registry.example.com:5000/db:2"): ("present", "sha256:bbb"),
                ("two", "corral/web:1"): ("failed", "manifest for corral/web:1 not found"),
                ("two", "registry.example.com:5000/db:2"): ("pulled", "x"),
            }
            assert {r["service"] for r in answer["results"] if r["image"] == "corral/web:1"} == {"web"}
        # `two` is gone: it keeps its containers for the grace period, and its pull is skipped
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pulled = pool.submit(api.post, f"/v1/stacks/{stack_id}/pull", json={"services": ["web"]})
            asked = answer_pulls(one, {"corral/web:1": ("present", "sha256:aaa")})
            assert (asked["images"], asked["registries"]) == (["corral/web:1"], [])
            response = pulled.result(timeout=30)
        assert response.status_code == 200, response.text
        assert by_host_image(response.json()) == {
            ("one", "corral/web:1"): ("present", "sha256:aaa"),
            ("two", "corral/web:1"): ("skipped", "host not connected"),
        }
    audit = api.get("/v1/audit").json()
    assert any("pull" in str(entry) for entry in audit.get("data", [])), audit
