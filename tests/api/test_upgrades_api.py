"""Rolling-upgrade requests through the in-process API (no agents): what starts an upgrade, what is refused."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

COMPOSE = (
    "version: '2'\nservices:\n  web:\n    image: corral/busybox\n    environment:\n      V: '1'\n  db:\n    image: x\n"
)


def _up(api: TestClient, compose: str = COMPOSE, **extra: object):
    return api.put("/v1/stacks", json={"name": "shop", "compose": compose, **extra})


def _service(stack: dict, name: str) -> dict:
    return next(s for s in stack["services"] if s["name"] == name)


def test_upgrade_starts_only_for_changed_services_and_blocks_further_changes(api: TestClient) -> None:
    assert _up(api).status_code == 201
    changed = _up(api, COMPOSE.replace("'1'", "'2'"), upgrade={"batch_size": 1})
    assert changed.status_code == 200, changed.text
    stack = changed.json()
    web, db = _service(stack, "web"), _service(stack, "db")
    # the orchestrator's pass may already have found nothing to replace (no hosts): then it is upgraded at once
    assert web["state"] in ("upgrading", "upgraded") and web["upgrade"]["strategy"]["batch_size"] == 1
    assert db["upgrade"] is None and db["state"] != "upgrading"
    again = _up(api, COMPOSE.replace("'1'", "'3'"), upgrade={})
    assert again.status_code == 409, again.text
    assert "web" in again.json()["message"] and "roll it back" in again.json()["message"]
    plain = _up(api, COMPOSE.replace("'1'", "'3'"))
    assert plain.status_code == 409
    # without hosts there is no container to replace: the upgrade is done at once
    deadline = time.time() + 10
    while (
        time.time() < deadline and _service(api.get(f"/v1/stacks/{stack['id']}").json(), "web")["state"] != "upgraded"
    ):
        time.sleep(0.1)
    confirm = api.post(f"/v1/stacks/{stack['id']}/confirm-upgrade")
    assert confirm.status_code == 200, confirm.text
    assert _service(confirm.json(), "web")["upgrade"] is None
    nothing = api.post(f"/v1/stacks/{stack['id']}/rollback")
    assert nothing.status_code == 409 and "no upgrade" in nothing.json()["message"]
    assert _up(api, COMPOSE.replace("'1'", "'3'")).status_code == 200


def test_rollback_restores_the_previous_spec(api: TestClient) -> None:
    assert _up(api).status_code == 201
    stack = _up(api, COMPOSE.replace("'1'", "'2'"), upgrade={"start_first": True}).json()
    rolled = api.post(f"/v1/stacks/{stack['id']}/rollback")
    assert rolled.status_code == 200, rolled.text
    # without hosts an active service has nothing running: it shows activating
    assert _service(rolled.json(), "web")["state"] in ("rolling-back", "active", "activating")
    assert _up(api).json()["changed_services"] == []  # the stored spec is the original one again


def test_bad_strategy_is_422_naming_the_field(api: TestClient) -> None:
    assert _up(api).status_code == 201
    response = _up(api, COMPOSE.replace("'1'", "'2'"), upgrade={"batch_size": 0})
    assert response.status_code == 422 and response.json()["field"] == "upgrade.batch_size"
    restart = api.post(f"/v1/services/{_service(_up(api).json(), 'web')['id']}/restart", json={"batch_size": 0})
    assert restart.status_code == 422 and restart.json()["field"] == "batch_size"
