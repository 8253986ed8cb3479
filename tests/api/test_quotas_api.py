"""Quotas through the in-process API: environments keep their own limits over the server's `CORRAL_QUOTA_*`
(create, PATCH, back to the default), and `corral up`, upgrades, `POST /v1/stacks`, scale and catalog installs
that would pass one are refused with a 422 naming quota, limit and amount, with nothing stored; a 10,000-service
compose file is refused at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from tests.api.test_catalog_api import _add_dir


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The catalog tests here add a dir catalog, which a server takes only when the operator allows it."""
    return settings.model_copy(update={"catalog_allow_local": True})


SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def compose(*services: tuple[str, int]) -> str:
    return "services:\n" + "".join(
        f"  {name}:\n    image: corral/busybox\n    command: [sleep, '1000']\n    scale: {scale}\n"
        for name, scale in services
    )


def up(api: TestClient, text: str, name: str = "app", env: str = "default"):
    return api.put("/v1/stacks", json={"environment": env, "name": name, "compose": text})


def set_quotas(api: TestClient, env: str = "default", **quotas: int | None) -> dict:
    response = api.patch(f"/v1/environments/{env}", json={"quotas": quotas})
    assert response.status_code == 200, response.text
    return response.json()


def stored(api: TestClient) -> list[tuple[str, list[tuple[str, int]]]]:
    return [
        (s["name"], sorted((v["name"], v["scale"]) for v in s["services"]))
        for s in api.get("/v1/stacks").json()["data"]
    ]


def test_environments_keep_their_quotas_over_the_servers(api: TestClient) -> None:
    defaults = api.get("/v1/environments/default").json()
    assert defaults["quotas"] == {
        "services_per_stack": 200,
        "services_per_environment": 1000,
        "containers_per_stack": 5000,
        "containers_per_environment": 10000,
    }
    assert defaults["quota_overrides"] == {}
    made = api.post("/v1/environments", json={"name": "big", "quotas": {"services_per_stack": 400}})
    assert made.status_code == 201, made.text
    assert made.json()["quotas"]["services_per_stack"] == 400 and made.json()["quota_overrides"] == {
        "services_per_stack": 400
    }
    after = set_quotas(api, "big", containers_per_stack=9, services_per_stack=None)
    assert after["quota_overrides"] == {"containers_per_stack": 9}
    assert (after["quotas"]["services_per_stack"], after["quotas"]["containers_per_stack"]) == (200, 9)
    for bad, named in (({"pods": 3}, "'pods' is not a quota"), ({"services_per_stack": -1}, "between 0 and")):
        refused = api.patch("/v1/environments/big", json={"quotas": bad})
        assert refused.status_code == 422 and refused.json()["field"] == "quotas" and named in refused.json()["message"]
    assert api.get("/v1/environments/big").json()["quota_overrides"] == {"containers_per_stack": 9}
    api.app.state.settings.quota_services_per_environment = 7  # type: ignore[attr-defined]
    assert api.get("/v1/environments/big").json()["quotas"]["services_per_environment"] == 7


# quota -> (limit, what is stored first, the stack that passes it, its name, requested, now)
CASES = {
    "services_per_stack": (2, [], ("app", [("a", 1), ("b", 1), ("c", 1)]), 'stack "app"', 3, 0),
    "services_per_environment": (3, [("one", [("a", 1), ("b", 1)])], ("app", [("c", 0), ("d", 0)]), None, 4, 2),
    "containers_per_stack": (4, [], ("app", [("a", 5)]), 'stack "app"', 5, 0),
    "containers_per_environment": (6, [("one", [("a", 4)])], ("app", [("b", 1), ("c", 2)]), None, 7, 4),
}


@SQLITE
@pytest.mark.parametrize("quota", sorted(CASES))
def test_each_quota_is_refused_with_its_message_and_nothing_stored(api: TestClient, quota: str) -> None:
    limit, first, (name, services), scope, requested, now = CASES[quota]
    set_quotas(api, **{quota: limit})
    for stack, members in first:
        assert up(api, compose(*members), stack).status_code == 201
    before = stored(api)
    refused = up(api, compose(*services), name)
    assert refused.status_code == 422, refused.text
    error = refused.json()
    scope = scope or 'environment "default"'
    what = "services" if quota.startswith("services") else "containers (total scale)"
    expected = (
        f'{scope} would have {requested} {what} (now {now}); quota {quota} of environment "default" is {limit} '
        f"(raise it with: corral env update default --quota {quota}={requested})"
    )
    assert (error["error"], error["field"], error["violations"]) == ("quota", "quota", [expected])
    assert expected in error["message"]
    assert api.post("/v1/stacks", json={"name": name, "compose": compose(*services)}).status_code == 422
    assert stored(api) == before

    set_quotas(api, **{quota: requested})
    assert up(api, compose(*services), name).status_code == 201
    assert stored(api) != before


@SQLITE
def test_upgrades_scale_and_scale_down_under_a_lowered_quota(api: TestClient) -> None:
    assert up(api, compose(("web", 2), ("db", 1))).status_code == 201
    set_quotas(api, services_per_stack=2, containers_per_stack=4)
    grown = up(api, compose(("web", 2), ("db", 1), ("cache", 1)))
    assert grown.status_code == 422 and grown.json()["violations"][0].startswith('stack "app" would have 3 services')
    assert stored(api) == [("app", [("db", 1), ("web", 2)])]

    web = next(s for s in api.get("/v1/services").json()["data"] if s["name"] == "web")
    refused = api.post(f"/v1/services/{web['id']}/scale", json={"scale": 4})
    assert refused.status_code == 422 and refused.json()["violations"] == [
        'stack "app" would have 5 containers (total scale) (now 3); quota containers_per_stack of environment '
        '"default" is 4 (raise it with: corral env update default --quota containers_per_stack=5)'
    ]
    assert api.get(f"/v1/services/{web['id']}").json()["scale"] == 2
    assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 3}).status_code == 200

    set_quotas(api, containers_per_stack=1)  # lowered below what runs: shrinking is still allowed
    assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 2}).status_code == 200
    assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 3}).status_code == 422
    assert up(api, compose(("web", 1))).status_code == 200
    set_quotas(api, containers_per_stack=None)
    assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 30}).status_code == 200


@SQLITE
def test_a_ten_thousand_service_file_is_refused_quickly(api: TestClient) -> None:
    text = "services:\n" + "".join(
        f"  s{i}:\n    image: busybox:latest\n    command: sleep 1d\n    scale: 0\n" for i in range(10_000)
    )
    assert len(text) > 500_000
    start = time.monotonic()
    refused = up(api, text, "big")
    assert time.monotonic() - start < 60  # a failure bound on a loaded machine, not a speed target (bench/)
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        "docker-compose.yml: services: 10000 services; a compose file may define at most 2000"
    )
    assert api.get("/v1/stacks").json()["data"] == []
    fits_the_parser = compose(*((f"s{i}", 0) for i in range(201)))
    refused = up(api, fits_the_parser, "big")
    assert refused.status_code == 422 and "quota services_per_stack" in refused.json()["message"]


@SQLITE
def test_catalog_install_is_refused_over_a_quota(api: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "cat" / "templates" / "tool"
    (folder / "0").mkdir(parents=True)
    (folder / "config.yml").write_text("name: Tool\ndescription: Three of them.\nversion: 1.0.0\n")
    (folder / "0" / "docker-compose.yml").write_text(compose(("tool", 3)))
    (folder / "0" / "rancher-compose.yml").write_text("version: '2'\ncatalog:\n  name: Tool\n  version: 1.0.0\n")
    _add_dir(api, tmp_path / "cat")
    set_quotas(api, containers_per_environment=2)
    install = api.post("/v1/environments/default/templates/local/tool/install", json={"stack": "tool"})
    assert install.status_code == 422 and install.json()["error"] == "quota"
    assert "quota containers_per_environment" in install.json()["message"]
    assert api.get("/v1/stacks").json()["data"] == []
    set_quotas(api, containers_per_environment=3)
    installed = api.post("/v1/environments/default/templates/local/tool/install", json={"stack": "tool"})
    assert installed.status_code == 201, installed.text
