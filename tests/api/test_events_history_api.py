"""Event history (issue 18): published events are kept, paged newest first, filtered, bounded, without secrets."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from corral.store.events import EventStore


def test_events_published_before_a_reader_came_are_served_newest_first(api: TestClient) -> None:
    before = time.time()
    for name in ("ev-a", "ev-b", "ev-c"):
        assert api.post("/v1/environments", json={"name": name}).status_code in (200, 201)
    page = api.get("/v1/events", params={"type": "environment", "since": before}).json()
    names = [e["data"]["name"] for e in page["data"] if e["action"] == "created"]
    assert names == ["ev-c", "ev-b", "ev-a"]
    assert page["next"] is None
    first = api.get("/v1/events", params={"type": "environment", "since": before, "limit": 2}).json()
    assert [e["data"]["name"] for e in first["data"]] == ["ev-c", "ev-b"] and first["next"]
    rest = api.get("/v1/events", params={"type": "environment", "since": before, "before": first["next"]}).json()
    assert [e["data"]["name"] for e in rest["data"]] == ["ev-a"]
    scoped = api.get("/v1/events", params={"environment": "ev-b", "type": "environment"}).json()["data"]
    assert {e["data"]["name"] for e in scoped} == {"ev-b"}


def test_a_registration_token_event_keeps_no_secret(api: TestClient) -> None:
    created = api.post("/v1/environments/default/registration-tokens", json={}).json()
    events = api.get("/v1/events", params={"type": "registration_token"}).json()["data"]
    assert events and all(created.get("token", "~") not in str(e) for e in events)


def test_history_is_bounded(api: TestClient) -> None:
    store = EventStore(api.app.state.store, keep=5)  # type: ignore[attr-defined]
    store.append([{"time": time.time(), "resource_type": "t", "action": str(i), "data": {}} for i in range(12)])
    kept = store.page(resource_type="t", limit=100)
    assert [e["action"] for e in kept] == ["11", "10", "9", "8", "7"]
    assert store.page(resource_type="nope") == []


def test_bad_paging_is_refused(api: TestClient) -> None:
    assert api.get("/v1/events", params={"limit": 0}).status_code == 422
    assert api.get("/v1/events", params={"environment": "missing"}).status_code == 404
