"""Service accounts: a container labelled `io.rancher.container.create_agent: true` receives credentials for its
own environment in its launch environment (only in its host's desired set), with at most the restricted role;
they stop working the moment the container is gone, and no API view of the service shows them."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.security.conftest import People

COMPOSE = """\
services:
  robot:
    image: corral/busybox
    environment: {MODE: batch}
    labels:
      io.rancher.container.create_agent: 'true'
      io.rancher.container.agent.role: environment
  plain:
    image: corral/busybox
"""
FACTS = {"hostname": "edge", "arch": "x86_64", "cpus": 2, "memory_bytes": 1 << 30, "engine_version": "24.0"}


def _desired_of(ws: Any, services: set[str], seen: list[str], limit: int = 40) -> dict[str, dict[str, Any]]:
    """The first desired set naming every one of these services: service -> its entry (other messages -> seen)."""
    for _ in range(limit):
        text = ws.receive_text()
        message = protocol.decode(text)
        if message.type != protocol.DESIRED:
            seen.append(text)  # e.g. `network`, what the agent's metadata service and DNS answer from
        else:
            entries = {entry["slot"]["service"]: entry for entry in message.data["containers"]}
            if services <= set(entries):
                return entries
    raise AssertionError(f"no desired set with {services}")


def test_a_labelled_container_gets_restricted_credentials_that_die_with_it(api: TestClient, people: People) -> None:
    host = register(api)
    stack = api.put("/v1/stacks", json={"name": "bots", "compose": COMPOSE, "environment": "default"})
    assert stack.status_code == 201, stack.text
    with api.websocket_connect("/v1/agent", headers=basic(host["access_key"], host["secret_key"])) as agent:
        agent.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        agent.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": []}).encode())
        others: list[str] = []
        desired = _desired_of(agent, {"robot", "plain"}, others)
        agent.send_text(protocol.Message(protocol.HEARTBEAT, {"time": time.time()}).encode())
    robot, plain = desired["robot"], desired["plain"]
    assert not any(key.startswith(("CATTLE_", "CORRAL_")) for key, _ in plain["launch"].get("environment", []))
    environment = dict(robot["launch"]["environment"])
    assert environment["MODE"] == "batch"
    assert environment["CATTLE_ACCESS_KEY"] == environment["CORRAL_ACCESS_KEY"]
    assert environment["CATTLE_URL"].endswith("/v1") and "BEGIN CERTIFICATE" in environment["CORRAL_CA_FILE"]
    secret = environment["CATTLE_SECRET_KEY"]
    assert all(secret not in text for text in others)
    credentials = basic(environment["CATTLE_ACCESS_KEY"], secret)

    me = api.get("/v1/me", headers=credentials).json()
    assert me["kind"] == "service" and [e["role"] for e in me["environments"]] == ["restricted"]
    assert api.get("/v1/stacks", headers=credentials).status_code == 200  # its own environment
    assert api.get("/v1/hosts", params={"environment": "other"}, headers=credentials).status_code == 404
    assert api.post(f"/v1/hosts/{host['host_id']}/deactivate", headers=credentials).status_code == 403
    service_id = next(s["id"] for s in stack.json()["services"] if s["name"] == "robot")
    assert api.post(f"/v1/services/{service_id}/scale", json={"scale": 1}, headers=credentials).status_code == 200
    entry = api.get("/v1/audit", params={"environment": "default", "limit": 1}).json()["data"][0]
    assert (entry["actor"], entry["auth_kind"], entry["access_key"], entry["action"]) == (
        "container:bots-robot-1",  # the container that acted, by name
        "service",
        environment["CATTLE_ACCESS_KEY"],
        "POST /v1/services/{service_id}/scale",
    )
    assert me["username"] == "container:bots-robot-1"

    views = [
        api.get("/v1/services", params={"environment": "default"}).text,
        api.get(f"/v1/stacks/{stack.json()['id']}").text,
        api.get("/v1/containers", params={"environment": "default"}).text,
        api.get("/v1/keys").text,
        api.get("/v1/audit", params={"limit": 500}).text,
    ]
    assert all(secret not in view for view in views)

    assert api.delete(f"/v1/stacks/{stack.json()['id']}").status_code == 204
    deadline = time.monotonic() + 30
    while api.get("/v1/me", headers=credentials).status_code != 401:
        assert time.monotonic() < deadline, "the container's credentials outlived it"
        time.sleep(0.2)


def test_a_container_may_not_ask_for_more_than_restricted(api: TestClient, people: People) -> None:
    compose = COMPOSE.replace("agent.role: environment", "agent.role: environmentAdmin")
    response = api.put("/v1/stacks", json={"name": "greedy", "compose": compose, "environment": "default"})
    assert response.status_code == 422
    assert "service robot" in response.json()["message"] and "at most restricted" in response.json()["message"]
    assert response.json()["field"] == "services.robot.labels"
    assert api.get("/v1/stacks", params={"environment": "default"}).json()["data"] == []
