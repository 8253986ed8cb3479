"""A user of one environment sees nothing of another through lists, the event stream or the audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.security.conftest import People

COMPOSE = "services:\n  web:\n    image: corral/busybox\n"


def test_the_event_stream_of_a_user_carries_only_their_environment(api: TestClient, people: People) -> None:
    other_id = api.get("/v1/environments/other").json()["id"]
    with api.websocket_connect("/v1/events", headers=people.stranger) as events:  # no environment named
        api.put("/v1/stacks", json={"name": "secret-plans", "compose": COMPOSE, "environment": "default"})
        api.put("/v1/stacks", json={"name": "visible", "compose": COMPOSE, "environment": "other"})
        first = events.receive_json()
    assert first["environment_id"] == other_id, first
    assert "secret-plans" not in str(first)


def test_lists_without_an_environment_show_only_the_caller_s(api: TestClient, people: People) -> None:
    api.put("/v1/stacks", json={"name": "secret-plans", "compose": COMPOSE, "environment": "default"})
    api.put("/v1/stacks", json={"name": "visible", "compose": COMPOSE, "environment": "other"})
    for path in ("/v1/stacks", "/v1/services", "/v1/containers", "/v1/hosts", "/v1/catalogs"):
        response = api.get(path, headers=people.stranger)
        assert response.status_code == 200, (path, response.text)
        assert "secret-plans" not in response.text
    assert [s["name"] for s in api.get("/v1/stacks", headers=people.stranger).json()["data"]] == ["visible"]
    assert sorted(s["name"] for s in api.get("/v1/stacks").json()["data"]) == ["secret-plans", "visible"]  # admin
    owner = people.by_role["owner"]
    api.put("/v1/environments/other/members", json={"user": "u-owner", "role": "read-only"})
    response = api.get("/v1/stacks", headers=owner)  # a member of two environments names one
    assert response.status_code == 422 and "name an environment" in response.json()["message"]
    assert [e["name"] for e in api.get("/v1/environments", headers=owner).json()["data"]] == ["default", "other"]
    audit = api.get("/v1/audit", params={"environment": "other"}, headers=owner)
    assert audit.status_code == 403  # read-only there: no audit
