"""Sidekick units through the in-process API (no agents): what `up` stores and shows, scaling in lockstep."""

from __future__ import annotations

from fastapi.testclient import TestClient

UNIT = (
    "version: '2'\nservices:\n"
    "  web:\n    image: corral/busybox\n    labels:\n      io.rancher.sidekicks: data\n"
    "  data:\n    image: corral/busybox\n    volumes: [/data]\n"
)


def _up(api: TestClient, compose: str = UNIT):
    return api.put("/v1/stacks", json={"name": "unit", "compose": compose})


def _services(stack: dict) -> dict[str, dict]:
    return {s["name"]: s for s in stack["services"]}


def test_a_unit_is_shown_and_scales_in_lockstep(api: TestClient) -> None:
    created = _up(api)
    assert created.status_code == 201, created.text
    services = _services(created.json())
    assert services["web"]["sidekicks"] == ["data"] and services["web"]["sidekick_of"] is None
    assert services["data"]["sidekick_of"] == "web" and services["data"]["sidekicks"] == []
    assert _up(api).json()["changed_services"] == []  # stored specs round-trip unchanged

    refused = api.post(f"/v1/services/{services['data']['id']}/scale", json={"scale": 4})
    assert refused.status_code == 422
    assert refused.json()["field"] == "scale" and "data is a sidekick of web" in refused.json()["message"]

    assert api.post(f"/v1/services/{services['web']['id']}/scale", json={"scale": 4}).json()["scale"] == 4
    assert api.get(f"/v1/services/{services['data']['id']}").json()["scale"] == 4


def test_a_bad_sidekick_label_is_422_naming_file_service_and_label(api: TestClient) -> None:
    response = _up(api, UNIT.replace("io.rancher.sidekicks: data", "io.rancher.sidekicks: data, ghost"))
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "docker-compose.yml:services.web.labels.io.rancher.sidekicks"
    assert "names service 'ghost', which is not defined in docker-compose.yml" in body["message"]
    assert api.get("/v1/stacks").json()["data"] == []
