"""A database locked by another process is an outage: writes answer 503 with Retry-After, reads go on."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings


def test_writes_on_a_locked_database_are_503_with_retry_after(api: TestClient, settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the lock of another process is SQLite's")
    locker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        refused = api.post("/v1/environments", json={"name": "during-the-lock"})
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        body = refused.json()
        assert body["error"] == "unavailable"
        assert body["message"].startswith("the server's database is unavailable (locked by another process)")
        assert "INSERT" not in body["message"] and "environments" not in body["message"]
        listed = api.get("/v1/environments")
        assert listed.status_code == 200 and "during-the-lock" not in listed.text
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert api.post("/v1/environments", json={"name": "after-the-lock"}).status_code == 201
