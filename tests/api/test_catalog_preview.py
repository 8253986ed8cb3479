"""Catalog preview through the in-process API: what install would deploy (rendered files, resolved answers,
services), the same 422s as install naming the question, secrets masked, and nothing ever stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from tests.api.test_catalog_api import _add_dir, make_catalog

PREVIEW = "/v1/environments/default/templates/local/tiny/preview"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """These tests add dir and file:// git catalogs, which a server takes only when the operator allows them."""
    return settings.model_copy(update={"catalog_allow_local": True})


def test_preview_renders_the_files_with_the_answers_and_stores_nothing(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, make_catalog(tmp_path / "cat"))
    answers = {"EXTRA": "TRUE", "SECONDS": "300", "TOKEN": "s3cret-token"}
    response = api.post(PREVIEW, json={"stack": "t1", "version": "0", "answers": answers})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["template"] == "local/tiny" and body["version"] == {"folder": "0", "version": "0.9.0"}
    compose = body["files"]["docker-compose.yml"]
    assert "extra:" in compose and "command: [sleep, '300']" in compose  # the .tpl saw the answers
    assert "catalog:" not in body["files"]["rancher-compose.yml"]
    assert body["answers"] == {"EXTRA": "true", "SECONDS": "300", "TOKEN": "********"}
    assert {s["name"]: s["scale"] for s in body["services"]} == {"web": 1, "extra": 1}
    assert "s3cret-token" not in response.text
    assert api.get("/v1/stacks").json()["data"] == []


def test_preview_refuses_what_install_refuses(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, make_catalog(tmp_path / "cat"))
    bad = api.post(PREVIEW, json={"stack": "t1", "answers": {"SECONDS": "0"}})
    assert bad.status_code == 422 and bad.json()["field"] == "answers.SECONDS"
    assert "Sleep seconds (SECONDS)" in bad.json()["message"]
    bad_name = api.post(PREVIEW, json={"stack": "Not A Name"})
    assert bad_name.status_code == 422, bad_name.text
    unknown = api.post(PREVIEW, json={"stack": "t1", "version": "7"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "version"


def test_preview_of_the_library_template_shows_the_interpolated_environment(api: TestClient) -> None:
    url = "/v1/environments/default/templates/library/hello-web/preview"
    body = api.post(url, json={"stack": "hi", "answers": {"MESSAGE": "hey there", "SCALE": "3"}}).json()
    (web,) = body["services"]
    assert web["environment"]["MESSAGE"] == "hey there" and web["scale"] == 3
    assert "${MESSAGE}" in body["files"]["docker-compose.yml"]
