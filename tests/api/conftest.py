"""The real application on a real SQLite file, driven in-process (no network, no Docker)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store


def basic(access: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{access}:{secret}".encode()).decode()}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, heartbeat_seconds=0.2, missed_heartbeats=2, host_grace_seconds=1.0)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    store = open_store(settings)
    access, secret = ensure_admin_key(store, settings.data_dir) or ("", "")
    ensure_default_environment(store)
    app = create_app(settings, store)
    with TestClient(app, headers=basic(access, secret)) as client:
        client.admin_auth = basic(access, secret)  # type: ignore[attr-defined]
        yield client
