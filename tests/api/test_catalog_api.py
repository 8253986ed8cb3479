"""Catalog sources (dir, real git over file://, the built-in `library`), templates, icons, install and upgrade
through the in-process API (no agents): validation, storage of the origin, nothing stored on error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings

CONFIG = "name: Tiny\ndescription: A tiny template.\nversion: 1.0.0\ncategory: Test\n"
COMPOSE_TPL = """version: '2'
services:
  web:
    image: corral/busybox:latest
    command: [sleep, '1000']
{{- if eq .Values.EXTRA "true" }}
  extra:
    image: corral/busybox:latest
    command: [sleep, '{{ .Values.SECONDS }}']
{{- end }}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """These tests add dir and file:// git catalogs, which a server takes only when the operator allows them."""
    return settings.model_copy(update={"catalog_allow_local": True})


def _rancher(version: str, upgrade_from: str = "") -> str:
    upgrade = f"  upgrade_from: '{upgrade_from}'\n" if upgrade_from else ""
    return f"""version: '2'
catalog:
  name: Tiny
  version: {version}
{upgrade}  questions:
    - variable: EXTRA
      label: Extra service
      type: boolean
      default: 'false'
    - variable: SECONDS
      label: Sleep seconds
      type: int
      default: 100
      min: 1
    - variable: TOKEN
      label: Token
      type: password
      default: ''
services:
  web:
    scale: 1
"""


def make_catalog(root: Path, *, broken_tpl: bool = False) -> Path:
    folder = root / "templates" / "tiny"
    for number, version, upgrade_from in [("0", "0.9.0", ""), ("1", "1.0.0", ">=0.9.0 <1.0.0")]:
        (folder / number).mkdir(parents=True)
        (folder / number / "docker-compose.yml.tpl").write_text(COMPOSE_TPL)
        (folder / number / "rancher-compose.yml").write_text(_rancher(version, upgrade_from))
        (folder / number / "README.md").write_text(f"# Tiny {version}\n")
    (folder / "config.yml").write_text(CONFIG)
    (folder / "catalogIcon-tiny.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    if broken_tpl:
        bad = root / "templates" / "broken" / "0"
        bad.mkdir(parents=True)
        (bad.parent / "config.yml").write_text("name: Broken\nversion: 0\n")
        (bad / "docker-compose.yml.tpl").write_text("version: '2'\nservices:\n  web:\n    image: {{ .Values.X \n")
        (bad / "rancher-compose.yml").write_text("version: '2'\ncatalog:\n  name: Broken\n  version: 0.1.0\n")
    return root


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _add_dir(api: TestClient, root: Path, name: str = "local", **extra: object) -> dict:
    response = api.post("/v1/catalogs", json={"name": name, "kind": "dir", "url": str(root), **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_builtin_library_is_registered_and_cannot_be_removed(api: TestClient) -> None:
    sources = api.get("/v1/catalogs").json()["data"]
    library = next(s for s in sources if s["name"] == "library")
    assert library["kind"] == "builtin" and library["environment_id"] == ""
    response = api.delete(f"/v1/catalogs/{library['id']}")
    assert response.status_code == 422 and "library" in response.json()["message"]


def test_dir_catalog_crud_and_duplicates(api: TestClient, tmp_path: Path) -> None:
    root = make_catalog(tmp_path / "cat")
    source = _add_dir(api, root)
    assert source["kind"] == "dir" and source["error"] == ""
    again = api.post("/v1/catalogs", json={"name": "local", "kind": "dir", "url": str(root)})
    assert again.status_code == 409 and again.json()["field"] == "name"
    per_env = _add_dir(api, root, environment="default")  # the same name per environment hides the global one
    assert per_env["environment_id"] != ""
    visible = api.get("/v1/catalogs", params={"environment": "default"}).json()["data"]
    assert [s["id"] for s in visible if s["name"] == "local"] == [per_env["id"]]
    missing = api.post("/v1/catalogs", json={"name": "nope", "kind": "dir", "url": str(tmp_path / "missing")})
    assert missing.status_code == 422 and missing.json()["field"] == "url"
    relative = api.post("/v1/catalogs", json={"name": "rel", "kind": "dir", "url": "cat"})
    assert relative.status_code == 422
    assert api.delete(f"/v1/catalogs/{source['id']}").status_code == 204
    assert api.delete(f"/v1/catalogs/{source['id']}").status_code == 404
    names = sorted(s["name"] for s in api.get("/v1/catalogs").json()["data"])
    assert names == ["library", "local"]


@pytest.mark.parametrize(
    "url",
    ["http://example.com/c.git", "git://example.com/c.git", "ext::sh -c touch% /tmp/x", "-uhelp", "/srv/catalog"],
)
def test_rejected_git_urls_store_nothing(api: TestClient, url: str) -> None:
    response = api.post("/v1/catalogs", json={"name": "bad", "kind": "git", "url": url, "branch": "main"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "url"
    assert [s["name"] for s in api.get("/v1/catalogs").json()["data"]] == ["library"]


def test_git_catalog_clone_refresh_and_failures(api: TestClient, tmp_path: Path) -> None:
    repo = make_catalog(tmp_path / "repo")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "one")
    first_commit = _git(repo, "rev-parse", "HEAD")
    response = api.post(
        "/v1/catalogs", json={"name": "remote", "kind": "git", "url": f"file://{repo}", "branch": "main"}
    )
    assert response.status_code == 201, response.text
    source = response.json()
    assert source["commit"] == first_commit and source["error"] == ""
    templates = api.get("/v1/environments/default/templates").json()["data"]
    assert "remote/tiny" in [t["id"] for t in templates]
    (repo / "templates" / "tiny" / "config.yml").write_text(CONFIG.replace("A tiny template.", "Changed."))
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-am", "two")
    refreshed = api.post(f"/v1/catalogs/{source['id']}/refresh").json()
    assert refreshed["commit"] == _git(repo, "rev-parse", "HEAD") != first_commit
    shown = api.get("/v1/templates/remote/tiny").json()
    assert shown["description"].strip() == "Changed."
    # a broken source is shown with git's reason, never a 500; the last good checkout stays usable
    bad = api.post("/v1/catalogs", json={"name": "nobranch", "kind": "git", "url": f"file://{repo}", "branch": "nope"})
    assert bad.status_code == 201 and "git fetch failed" in bad.json()["error"]
    (repo / ".git").rename(repo / "git-moved")
    failed = api.post(f"/v1/catalogs/{source['id']}/refresh")
    assert failed.status_code == 200 and failed.json()["error"] and failed.json()["commit"] == refreshed["commit"]
    listed = api.get("/v1/environments/default/templates").json()
    assert "remote/tiny" in [t["id"] for t in listed["data"]] and listed["problems"]["remote"]


def test_templates_list_show_and_icon(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, make_catalog(tmp_path / "cat"))
    templates = {t["id"]: t for t in api.get("/v1/environments/default/templates").json()["data"]}
    assert "library/hello-web" in templates
    tiny = templates["local/tiny"]
    assert tiny["display_name"] == "Tiny" and tiny["category"] == "Test" and tiny["default_version"] == "1"
    assert [v["folder"] for v in tiny["versions"]] == ["0", "1"]
    shown = api.get("/v1/templates/local/tiny").json()
    assert shown["versions"][1]["readme"].startswith("# Tiny 1.0.0")
    assert [q["variable"] for q in shown["versions"][0]["questions"]] == ["EXTRA", "SECONDS", "TOKEN"]
    icon = api.get(tiny["icon"])
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.content.startswith(b"<svg")
    assert api.get("/v1/templates/local/nothere").status_code == 404
    assert api.get("/v1/templates/local/..%2F..%2Fetc/icon").status_code == 404
    assert api.get("/v1/templates/elsewhere/tiny").status_code == 404


def test_install_with_a_bad_answer_names_the_question_and_creates_nothing(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, make_catalog(tmp_path / "cat", broken_tpl=True))
    url = "/v1/environments/default/templates/local/tiny/install"
    response = api.post(url, json={"stack": "t1", "version": "0", "answers": {"SECONDS": "soon"}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "answers.SECONDS" and "Sleep seconds" in body["message"]
    unknown = api.post(url, json={"stack": "t1", "version": "7"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "version"
    broken = api.post("/v1/environments/default/templates/local/broken/install", json={"stack": "t2"})
    assert broken.status_code == 422, broken.text
    assert broken.json()["message"].startswith("docker-compose.yml.tpl:4:")
    bad_name = api.post(url, json={"stack": "Not A Name"})
    assert bad_name.status_code == 422
    assert api.get("/v1/stacks").json()["data"] == []


def test_install_stores_the_origin_then_upgrade_follows_upgrade_from(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, make_catalog(tmp_path / "cat"))
    url = "/v1/environments/default/templates/local/tiny/install"
    answers = {"EXTRA": "true", "SECONDS": "300", "TOKEN": "s3cret-token"}
    response = api.post(url, json={"stack": "t1", "version": "0", "answers": answers})
    assert response.status_code == 201, response.text
    stack = response.json()
    assert sorted(s["name"] for s in stack["services"]) == ["extra", "web"]
    origin = stack["catalog"]
    assert (origin["catalog"], origin["template"], origin["version"], origin["version_name"]) == (
        "local",
        "tiny",
        "0",
        "0.9.0",
    )
    assert origin["answers"]["SECONDS"] == "300" and origin["answers"]["TOKEN"] == "********"
    assert origin["upgrades"] == ["1"]
    assert "s3cret-token" not in api.get(f"/v1/stacks/{stack['id']}").text
    assert "s3cret-token" not in api.get("/v1/stacks").text
    assert api.post(url, json={"stack": "t1", "version": "0"}).status_code == 409  # install never updates
    same = api.post(f"/v1/stacks/{stack['id']}/catalog-upgrade", json={"version": "0"})
    assert same.status_code == 422 and same.json()["field"] == "version"
    bad = api.post(f"/v1/stacks/{stack['id']}/catalog-upgrade", json={"version": "1", "answers": {"SECONDS": "0"}})
    assert bad.status_code == 422 and bad.json()["field"] == "answers.SECONDS"
    assert api.get(f"/v1/stacks/{stack['id']}").json()["catalog"]["version"] == "0"
    upgraded = api.post(f"/v1/stacks/{stack['id']}/catalog-upgrade", json={"version": "1.0.0"})
    assert upgraded.status_code == 200, upgraded.text
    origin = upgraded.json()["catalog"]
    assert origin["version"] == "1" and origin["answers"]["SECONDS"] == "300" and origin["upgrades"] == []
    plain = api.put("/v1/stacks", json={"name": "plain", "compose": COMPOSE_TPL.split("{{")[0]})
    assert plain.json()["catalog"] == {}
    not_catalog = api.post(f"/v1/stacks/{plain.json()['id']}/catalog-upgrade", json={})
    assert not_catalog.status_code == 422 and not_catalog.json()["field"] == "stack"


def test_install_from_the_builtin_library(api: TestClient) -> None:
    url = "/v1/environments/default/templates/library/hello-web/install"
    response = api.post(url, json={"stack": "hi", "version": "0", "answers": {"MESSAGE": "hey", "SCALE": "1"}})
    assert response.status_code == 201, response.text
    assert response.json()["catalog"]["upgrades"] == ["1"]
    too_many = api.post(url, json={"stack": "hi2", "answers": {"SCALE": "99"}})
    assert too_many.status_code == 422 and too_many.json()["field"] == "answers.SCALE"
