"""The dangerous-container policy through the in-process API: environments keep their allowed settings (create,
PATCH, locked by default), `corral up` and catalog installs are refused with every violation named (service, field,
setting) and nothing stored, and where allowed the fields come back as warnings (up answer, preview, stack view)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from tests.api.test_catalog_api import _add_dir


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The catalog tests here add a dir catalog, which a server takes only when the operator allows it."""
    return settings.model_copy(update={"catalog_allow_local": True})


# setting -> (service body, the text the refusal names)
FIELDS = {
    "privileged": ("privileged: true", 'service "web": privileged: true'),
    "cap_add": ("cap_add: [NET_ADMIN]", 'service "web": cap_add: NET_ADMIN'),
    "host_network": ("network_mode: host", 'service "web": network_mode: host'),
    "system_mounts": (
        "volumes: ['/var/run/docker.sock:/var/run/docker.sock']",
        'service "web": volumes: /var/run/docker.sock (the Docker socket)',
    ),
}


def compose(body: str = "") -> str:
    return f"services:\n  web:\n    image: corral/busybox\n    command: [sleep, '1000']\n    {body}\n"


def up(api: TestClient, text: str, env: str = "default", name: str = "app", **extra: object):
    return api.put("/v1/stacks", json={"environment": env, "name": name, "compose": text, **extra})


def allow(api: TestClient, env: str, *settings: str) -> dict:
    response = api.patch(f"/v1/environments/{env}", json={"allow": list(settings)})
    assert response.status_code == 200, response.text
    return response.json()


def test_environments_keep_their_allowed_settings(api: TestClient) -> None:
    assert api.get("/v1/environments/default").json()["allow"] == []  # the first-start environment is locked
    assert api.post("/v1/environments", json={"name": "plain"}).json()["allow"] == []
    made = api.post("/v1/environments", json={"name": "edge", "allow": ["host_network,privileged"]})
    assert made.status_code == 201 and made.json()["allow"] == ["privileged", "host_network"]
    bad = api.post("/v1/environments", json={"name": "bad", "allow": ["privileged", "root"]})
    assert bad.status_code == 422 and bad.json()["field"] == "allow" and "'root'" in bad.json()["message"]
    assert sorted(e["name"] for e in api.get("/v1/environments").json()["data"]) == ["default", "edge", "plain"]
    assert allow(api, "edge", "all", "devices")["allow"] == ["all"]
    described = api.patch("/v1/environments/edge", json={"description": "edge boxes"}).json()
    assert (described["description"], described["allow"]) == ("edge boxes", ["all"])
    assert allow(api, "edge")["allow"] == []
    assert api.patch("/v1/environments/edge", json={"allow": ["x"]}).status_code == 422
    assert api.get("/v1/environments/edge").json()["allow"] == []
    assert api.patch("/v1/environments/nope", json={"allow": []}).status_code == 404


@pytest.mark.parametrize("setting", sorted(FIELDS))
def test_each_dangerous_field_is_refused_when_locked_and_warned_when_allowed(api: TestClient, setting: str) -> None:
    body, named = FIELDS[setting]
    refused = up(api, compose(body))
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert error["error"] == "policy" and error["field"] == "policy"
    expected = (
        f'{named} is not allowed in environment "default" (allow it with: corral env update default --allow {setting})'
    )
    assert error["violations"] == [expected] and expected in error["message"]
    assert api.get("/v1/stacks").json()["data"] == []  # nothing stored
    assert api.post("/v1/stacks", json={"name": "app", "compose": compose(body)}).status_code == 422

    others = [s for s in FIELDS if s != setting]
    allow(api, "default", *others)
    assert up(api, compose(body)).status_code == 422  # every other setting does not help
    allow(api, "default", setting)
    accepted = up(api, compose(body))
    assert accepted.status_code == 201, accepted.text
    view = accepted.json()
    assert any(w.startswith(f"{named} is allowed by setting {setting}") for w in view["warnings"])
    assert view["dangerous"] == [named]


def test_every_violation_is_listed_and_upgrades_are_checked_too(api: TestClient) -> None:
    text = (
        "services:\n"
        "  a: {image: corral/busybox, privileged: true, network_mode: host}\n"
        "  b: {image: corral/busybox, cap_add: [SYS_ADMIN], volumes: ['/:/host:ro', '/srv/app:/app']}\n"
        "  c: {image: corral/busybox, volumes: ['/srv/..//etc/:/cfg']}\n"
    )
    error = up(api, text).json()
    assert [v.split(" is not allowed")[0] for v in error["violations"]] == [
        'service "a": privileged: true',
        'service "a": network_mode: host',
        'service "b": cap_add: SYS_ADMIN',
        'service "b": volumes: / (a system path)',
        'service "c": volumes: /etc (a system path)',
    ]
    assert up(api, compose()).status_code == 201  # a harmless stack, then an upgrade asking for more
    upgrade = up(api, compose("privileged: true"), upgrade={"batch_size": 1})
    assert upgrade.status_code == 422 and "privileged: true" in upgrade.json()["message"]
    (stack,) = api.get("/v1/stacks").json()["data"]
    assert stack["dangerous"] == [] and stack["services"][0]["state"] != "upgrading"


def test_the_servers_data_dir_cannot_be_mounted(api: TestClient, tmp_path: Path) -> None:
    allow(api, "default", "privileged")
    error = up(api, compose(f"volumes: ['{tmp_path}:/data']")).json()
    assert error["violations"][0].startswith(f'service "web": volumes: {tmp_path} (a system path)')


PRIVILEGED_TEMPLATE = """version: '2'
services:
  tool:
    image: corral/busybox
    privileged: true
    volumes: ["/run/docker.sock:/var/run/docker.sock"]
    command: [sleep, '1000']
"""


def _catalog(root: Path) -> Path:
    folder = root / "templates" / "tool"
    (folder / "0").mkdir(parents=True)
    (folder / "config.yml").write_text("name: Tool\ndescription: Needs the host.\nversion: 1.0.0\n")
    (folder / "0" / "docker-compose.yml").write_text(PRIVILEGED_TEMPLATE)
    (folder / "0" / "rancher-compose.yml").write_text("version: '2'\ncatalog:\n  name: Tool\n  version: 1.0.0\n")
    return root


def test_catalog_preview_warns_and_install_is_refused_unless_allowed(api: TestClient, tmp_path: Path) -> None:
    _add_dir(api, _catalog(tmp_path / "cat"))
    base = "/v1/environments/default/templates/local/tool"
    preview = api.post(f"{base}/preview", json={"stack": "tool"})
    assert preview.status_code == 200, preview.text
    refused = preview.json()["policy"]["refused"]
    assert [r.split(" is not allowed")[0] for r in refused] == [
        'service "tool": privileged: true',
        'service "tool": volumes: /run/docker.sock (the Docker socket)',
    ]
    install = api.post(f"{base}/install", json={"stack": "tool"})
    assert install.status_code == 422 and install.json()["violations"] == refused
    assert api.get("/v1/stacks").json()["data"] == []

    allow(api, "default", "privileged", "system_mounts")
    body = api.post(f"{base}/preview", json={"stack": "tool"}).json()
    assert body["policy"]["refused"] == [] and len(body["policy"]["allowed"]) == 2
    assert set(body["policy"]["allowed"]) <= set(body["warnings"])
    assert 'service "tool": privileged: true is allowed by setting privileged' in body["policy"]["allowed"][0]
    installed = api.post(f"{base}/install", json={"stack": "tool"})
    assert installed.status_code == 201, installed.text
    assert set(body["policy"]["allowed"]) <= set(installed.json()["warnings"])
