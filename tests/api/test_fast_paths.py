"""The server's shortcuts for load (bench P3) give the same answers as the long way:
- a service's own view (`scale`, `GET /v1/services/{id}`) is read from that service's rows and the reports labelled
  with its slots only (server/views/stack_views.py `EnvironmentState.of_service`), and must equal its entry in the view
  built from the whole environment (`GET /v1/services`);
- an agent's report equal to the stored one writes nothing (cached views stay valid), any difference is stored;
- the `network` message, spliced from parts encoded once per environment, is the host's `NetworkState`;
- a principal read for an API key is reused across agents' container reports, never across a change of the keys."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi.testclient import TestClient

from corral.model import protocol
from corral.model.entities import KeyKind, ObservedContainer
from corral.store.access import AccessStore
from corral.store.changes import identity_version, write_version
from tests.api.conftest import basic
from tests.api.test_api import _recv, register

COMPOSE = "services:\n  web:\n    image: nginx\n  db:\n    image: redis\n"
RANCHER = "services:\n  web:\n    scale: 2\n"
FACTS = {"hostname": "edge", "arch": "x86_64", "cpus": 4, "memory_bytes": 1 << 30, "engine_version": "24.0"}


def _reported(slot: dict[str, Any], state: str, docker_id: str) -> dict[str, Any]:
    labels = {"io.corral.container": slot["id"], "io.corral.config-hash": slot["config_hash"]}
    return {"docker_id": docker_id, "name": docker_id, "image": "nginx", "state": state, "labels": labels}


def test_own_view_matches_the_environment_view(api: TestClient) -> None:
    creds = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        desired: list[dict[str, Any]] = []
        for _ in range(20):  # the desired set grows as the orchestrator places the stack
            message = _recv(ws)
            if message.type == protocol.DESIRED:
                desired = message.data["containers"]
                if len(desired) == 3:
                    break
        assert len(desired) == 3
        web = sorted((d["slot"] for d in desired if d["slot"]["service"] == "web"), key=lambda s: s["index"])
        db = next(d["slot"] for d in desired if d["slot"]["service"] == "db")
        stray = {"docker_id": "stray", "name": "stray", "image": "x", "state": "running", "labels": {}}
        reports = [_reported(web[0], "running", "w1"), _reported(web[1], "exited", "w2"), _reported(db, "running", "d")]
        ws.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": [*reports, stray]}).encode())
        service_id = next(s["id"] for s in stack.json()["services"] if s["name"] == "web")
        for _ in range(100):  # the snapshot is stored by the server's event loop; the pass assigns addresses
            own = api.get(f"/v1/services/{service_id}").json()
            services = api.get("/v1/services", params={"include": "containers"}).json()["data"]
            listed = next(s for s in services if s["id"] == service_id)
            if {c["docker_id"] for c in own["containers"]} == {"w1", "w2"} and _same(own, listed):
                break
        scaled = api.post(f"/v1/services/{service_id}/scale", json={"scale": 2})
        assert scaled.status_code == 200, scaled.text
    assert {(c["index"], c["docker_id"], c["state"]) for c in own["containers"]} == {
        (1, "w1", "running"),
        (2, "w2", "exited"),
    }
    assert (own["running"], own["scale"]) == (1, 2)
    assert _same(own, listed)
    assert _same(scaled.json(), own)


def _same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    def by_id(view: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(view["containers"], key=lambda c: c["id"])

    rest = {k: v for k, v in one.items() if k != "containers"}
    return rest == {k: v for k, v in other.items() if k != "containers"} and by_id(one) == by_id(other)


def test_an_unchanged_report_writes_nothing(api: TestClient) -> None:
    store = api.app.state.store  # type: ignore[attr-defined]
    host_id = register(api)["host_id"]
    web = ObservedContainer(docker_id="w", name="web", image="nginx", state="running", labels={"a": "b"})
    assert store.replace_host_containers(host_id, [web]) is True
    version = write_version()
    assert store.replace_host_containers(host_id, [web]) is False
    assert write_version() == version
    exited = ObservedContainer(docker_id="w", name="web", image="nginx", state="exited", exit_code=1)
    assert store.replace_host_containers(host_id, [exited]) is True
    assert write_version() != version
    assert store.list_host_containers(host_id) == [exited]
    assert store.replace_host_containers(host_id, []) is True
    assert store.list_host_containers(host_id) == []
    assert store.replace_host_containers(host_id, []) is False


def test_network_message_is_the_host_state(api: TestClient) -> None:
    creds = register(api)
    other = register(api, name="edge-2")["host_id"]
    with api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws:
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        for _ in range(20):
            message = _recv(ws)
            if message.type == protocol.DESIRED and len(message.data["containers"]) == 3:
                break
        network = api.app.state.orchestrator.network  # type: ignore[attr-defined]
        hosts = [creds["host_id"], other]
        for _ in range(50):  # both read with no write between them (the orchestrator's passes assign slices)
            version = write_version()
            states, encoded = network.states_for(hosts), network.encoded_states(hosts)
            if write_version() == version:
                break
    assert len(states[creds["host_id"]].containers) == 3
    for host_id in hosts:
        envelope = json.loads(encoded[host_id][1])
        assert (envelope["type"], envelope["v"]) == (protocol.NETWORK, protocol.PROTOCOL_VERSION)
        assert envelope["data"] == json.loads(json.dumps(states[host_id].to_dict()))
    assert encoded[creds["host_id"]][0] != encoded[other][0]  # each host's digest covers its own part


def test_a_principal_outlives_container_reports_but_not_a_key_change(api: TestClient) -> None:
    """Agents' container reports are the most frequent writes and change no principal: they leave a principal read
    for an API key reusable, and so do the workloads' changes but for containers' own keys; a write to the keys
    (here, the key's removal) does not, and the next call is refused."""
    store = api.app.state.store  # type: ignore[attr-defined]
    host_id = register(api)["host_id"]
    access_key, secret = store.create_api_key(KeyKind.ADMIN, description="reuse")
    headers = basic(access_key, secret)
    assert api.get("/v1/environments", headers=headers).status_code == 200
    identity, writes = identity_version(), write_version()
    web = ObservedContainer(docker_id="w", name="web", image="nginx", state="running")
    store.replace_host_containers(host_id, [web])
    store.upsert_host_container(host_id, dataclasses.replace(web, state="exited"))
    assert write_version() != writes and identity_version() == identity
    assert api.get("/v1/environments", headers=headers).status_code == 200
    of_containers = identity_version(of_container=True)
    stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE}, headers=headers)
    assert stack.status_code == 201, stack.text
    # a workload's change reads containers' own keys again (a key's slot may be gone), no other key
    assert identity_version() == identity and identity_version(of_container=True) != of_containers
    AccessStore(store).delete_key(access_key)
    assert identity_version() != identity
    assert api.get("/v1/environments", headers=headers).status_code == 401


def test_a_container_told_twice_is_written_and_shown_once(api: TestClient) -> None:
    """An agent may report a container as it already is (two engine events, one state): the hub compares with the
    in-memory state and writes nothing, publishes nothing; a report that differs is stored and shown."""
    creds = register(api)
    host_id = creds["host_id"]
    running = {"docker_id": "c1", "name": "web", "image": "nginx", "state": "running", "labels": {"a": "b"}}
    exited = {**running, "state": "exited", "exit_code": 1}
    with (
        api.websocket_connect("/v1/events", headers=api.admin_auth) as events,  # type: ignore[attr-defined]
        api.websocket_connect("/v1/agent", headers=basic(creds["access_key"], creds["secret_key"])) as ws,
    ):
        ws.send_text(protocol.Message(protocol.HELLO, {"facts": FACTS}).encode())
        assert _recv(ws).type == protocol.WELCOME
        for report in (running, running, exited):
            ws.send_text(protocol.Message(protocol.CONTAINER, {"container": report}).encode())
        shown: list[str] = []
        while "exited" not in shown:  # (pytest's timeout ends a wait that never sees it)
            event = events.receive_json()
            if event["resource_type"] == "container" and event["data"].get("id") == "c1":
                shown.append(event["data"]["state"])
    assert shown == ["running", "exited"]
    assert [c["state"] for c in api.get(f"/v1/hosts/{host_id}/containers").json()["data"]] == ["exited"]
