"""Compose through the API (issue 17): profiles, every error at once, Rancher leniencies as warnings, and
`GET /v1/stacks/{id}/files` for `corral export` (secret answers masked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings

COMPOSE = """\
services:
  web:
    image: corral/busybox
    environment: [GREETING]
  debug:
    image: corral/busybox
    profiles: [debug]
"""


def test_profiles_choose_the_services_and_are_kept_with_the_files(api: TestClient) -> None:
    plain = api.put("/v1/stacks", json={"name": "shop", "compose": COMPOSE})
    assert plain.status_code == 201, plain.text
    assert [s["name"] for s in plain.json()["services"]] == ["web"]
    with_debug = api.put("/v1/stacks", json={"name": "shop", "compose": COMPOSE, "profiles": ["debug"]})
    assert sorted(s["name"] for s in with_debug.json()["services"]) == ["debug", "web"]
    files = api.get(f"/v1/stacks/{with_debug.json()['id']}/files").json()
    assert files["files"] == {"docker-compose.yml": COMPOSE}
    assert files["profiles"] == ["debug"]
    assert files["warnings"] == []


def test_every_error_comes_back_at_once_and_nothing_is_stored(api: TestClient) -> None:
    compose = "services:\n  a: {image: x, restart: sometimes}\n  b: {image: x, ports: ['x:80']}\n"
    response = api.put("/v1/stacks", json={"name": "shop", "compose": compose})
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith("2 errors:")
    assert "service a:" in body["message"] and "service b:" in body["message"]
    assert body["field"] == "docker-compose.yml:services.a.restart"
    assert api.get("/v1/stacks").json()["data"] == []


def test_rancher_leniencies_are_warnings(api: TestClient) -> None:
    compose = "version: '2'\nservices:\n  Web:\n    image: corral/busybox\n    image: corral/busybox\n"
    rancher = "version: '2'\nservices:\n  lb:\n    scale: 1\n"
    response = api.put("/v1/stacks", json={"name": "shop", "compose": compose, "rancher_compose": rancher})
    assert response.status_code == 201, response.text
    warnings = "\n".join(response.json()["warnings"])
    assert "service 'Web' is named 'web'" in warnings
    assert "duplicate key 'image'" in warnings
    assert "service 'lb' is not defined" in warnings


def test_files_of_an_unknown_stack_is_404(api: TestClient) -> None:
    assert api.get("/v1/stacks/nope/files").status_code == 404


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A dir catalog (for the secret-answer test) is taken only when the operator allows local catalogs."""
    return settings.model_copy(update={"catalog_allow_local": True})


def test_export_masks_secret_answers_of_a_catalog_stack(api: TestClient, tmp_path: Path) -> None:
    version = tmp_path / "templates" / "app" / "0"
    version.mkdir(parents=True)
    (version.parent / "config.yml").write_text("name: App\nversion: 1.0.0\n")
    (version / "docker-compose.yml.tpl").write_text(
        "version: '2'\nservices:\n  web:\n    image: corral/busybox\n    environment:\n"
        "      TOKEN: '{{ .Values.TOKEN }}'\n"
    )
    (version / "rancher-compose.yml").write_text(
        "version: '2'\ncatalog:\n  name: App\n  version: 1.0.0\n  questions:\n"
        "  - variable: TOKEN\n    type: password\n    required: true\n"
    )
    assert api.post("/v1/catalogs", json={"name": "local", "kind": "dir", "url": str(tmp_path)}).status_code == 201
    url = "/v1/environments/default/templates/local/app/install"
    installed = api.post(url, json={"stack": "app", "answers": {"TOKEN": "s3cret-value"}})
    assert installed.status_code == 201, installed.text
    exported = api.get(f"/v1/stacks/{installed.json()['id']}/files")
    assert exported.status_code == 200
    assert "s3cret-value" not in exported.text
    assert "TOKEN: '********'" in exported.json()["files"]["docker-compose.yml"]
    assert exported.json()["answers"]["TOKEN"] == "********"
    assert exported.json()["warnings"] == ["secret answers are shown as ********: give them again when applying"]
