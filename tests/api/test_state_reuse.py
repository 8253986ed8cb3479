"""List calls reuse the environment state they read until the database is written (store/changes.py): what a call
writes is visible to the very next read, and repeated reads without a write return the same content."""

from __future__ import annotations

from fastapi.testclient import TestClient

from corral.store.changes import write_version

COMPOSE = "services:\n  web:\n    image: nginx\n  db:\n    image: redis\n"


def test_every_write_is_seen_by_the_next_list_call(api: TestClient) -> None:
    stack = api.post("/v1/stacks", json={"name": "app", "compose": COMPOSE})
    assert stack.status_code == 201, stack.text
    for _ in range(50):  # two reads with no write between them (the orchestrator's first passes write reasons)
        version = write_version()
        first, second = (api.get("/v1/services").json()["data"] for _ in range(2))
        if write_version() == version:
            break
    assert write_version() == version
    assert first == second
    web = next(s for s in first if s["name"] == "web")
    for scale in (3, 0, 2):
        assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": scale}).status_code == 200
        listed = {s["name"]: s["scale"] for s in api.get("/v1/services").json()["data"]}
        assert listed == {"web": scale, "db": 1}
        assert {s["name"] for s in api.get("/v1/stacks").json()["data"]} == {"app"}
    assert api.delete(f"/v1/stacks/{stack.json()['id']}").status_code == 204
    assert api.get("/v1/services").json()["data"] == []
    assert api.get("/v1/containers").json()["data"] == []
