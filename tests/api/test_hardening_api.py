"""The request guard and the local-catalog switch through the in-process API: 413 before a body is parsed (declared
or streamed), credentials checked before the body is read, failed authentications (key pairs and registration
tokens) throttled with 429 + Retry-After, and `dir` / `file://` catalogs refused unless the operator allows them."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings

LIMIT = 64 * 1024
PUBLIC_LIMIT = 16 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": LIMIT, "public_max_body_bytes": PUBLIC_LIMIT})


def _pieces(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def _bad() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"HNOPE:wrong-secret").decode()}


def test_bodies_over_the_limit_get_413_declared_or_streamed(api: TestClient) -> None:
    declared = api.put("/v1/stacks", content=b" " * (LIMIT + 1))
    assert declared.status_code == 413 and declared.json()["error"] == "too_large", declared.text
    assert declared.json()["field"] == "body"
    streamed = api.put("/v1/stacks", content=_pieces(LIMIT * 4))  # no Content-Length: chunked
    assert streamed.status_code == 413 and streamed.json()["error"] == "too_large", streamed.text
    assert "64 KiB" in streamed.json()["message"]
    public = api.post("/v1/agent/register", content=_pieces(PUBLIC_LIMIT * 2), headers={"Authorization": ""})
    assert public.status_code == 413, public.text
    fits = api.put("/v1/stacks", json={"environment": "default", "name": "ok1", "compose": "services: {}\n"})
    assert fits.status_code != 413


def test_credentials_are_checked_before_the_body(api: TestClient) -> None:
    reply = api.put("/v1/stacks", content=b"this is not json", headers=_bad())
    assert reply.status_code == 401 and reply.json()["error"] == "unauthorized"  # not a 422 about the body
    reply = api.put("/v1/stacks", content=_pieces(LIMIT * 4), headers=_bad())
    assert reply.status_code == 401


def test_failed_authentications_are_throttled(api: TestClient, settings: Settings) -> None:
    for _ in range(settings.auth_failures_per_minute):
        assert api.get("/v1/environments", headers=_bad()).status_code == 401
    blocked = api.get("/v1/environments", headers=_bad())
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert api.get("/v1/environments").status_code == 429  # the right key pair is not even checked now
    register = api.post("/v1/agent/register", json={"token": "crtX.nope", "name": "h1", "facts": {}})
    assert register.status_code == 429


def test_wrong_registration_tokens_count_as_failed_authentications(api: TestClient, settings: Settings) -> None:
    body = {"token": "crtnope.guess", "name": "h1", "labels": {}, "facts": {"arch": "amd64"}}
    statuses = [
        api.post("/v1/agent/register", json=body, headers={"Authorization": ""}).status_code
        for _ in range(settings.auth_failures_per_minute + 1)
    ]
    assert statuses[:-1] == [401] * settings.auth_failures_per_minute and statuses[-1] == 429


def test_local_catalogs_are_refused_unless_allowed(api: TestClient, tmp_path) -> None:
    (tmp_path / "cat" / "templates").mkdir(parents=True)
    for body in (
        {"name": "local", "kind": "dir", "url": str(tmp_path / "cat")},
        {"name": "localgit", "kind": "git", "url": f"file://{tmp_path}/repo", "branch": "main"},
        {"name": "localgit2", "kind": "git", "url": f"FILE://{tmp_path}/repo", "branch": "main"},
    ):
        reply = api.post("/v1/catalogs", json=body)
        assert reply.status_code == 422, reply.text
        assert "CORRAL_CATALOG_ALLOW_LOCAL=1" in reply.json()["message"] and reply.json()["field"] == "url"
    assert {c["name"] for c in api.get("/v1/catalogs").json()["data"]} == {"library"}
    assert api.get("/v1/environments/default/templates").json()["data"]  # the shipped catalog still works
