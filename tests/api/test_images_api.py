"""The hosts' images through the real API with fake agents on the websocket (issue 18): each host's `image_list`
report listed per host (filters host and in_use, paging, the list of a disconnected agent marked not current),
removal sent to the agent as an `image` request, refused with 409 naming the containers while in use (nothing
sent), bad input 4xx, and rights: read-only lists and may not remove, another environment's user sees nothing."""

from __future__ import annotations

import concurrent.futures
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from corral.model import protocol
from tests.api.test_volumes_api import agent, eventually
from tests.security.conftest import add_user

BUSYBOX = {
    "id": "sha256:" + "1" * 64,
    "tags": ["corral/busybox:latest"],
    "size": 4_400_000,
    "created": 1_700_000_000,
    "containers": ["shop-web-1", "shop-web-2"],
}
OLD = {
    "id": "sha256:" + "2" * 64,
    "tags": ["shop:1", "registry.local:5000/team/shop:old"],
    "size": 1_000,
    "created": 1_600_000_000,
}
DANGLING = {"id": "sha256:" + "3" * 64, "tags": ["<none>:<none>"], "size": 10}


def report(ws: Any, *images: dict[str, Any]) -> None:
    ws.send_text(protocol.Message(protocol.IMAGE_LIST, {"images": list(images)}).encode())


def listed(api: TestClient, headers: dict[str, str] | None = None, **params: str) -> list[dict[str, Any]]:
    response = api.get("/v1/images", params={"environment": "default", **params}, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def answer_image_requests(ws: Any, count: int, error: str | None = None) -> list[dict[str, Any]]:
    requests = []
    while len(requests) < count:
        message = protocol.decode(ws.receive_text())
        if message.type != protocol.IMAGE:
            continue
        requests.append(message.data)
        end = {"request_id": message.data["request_id"], "exit_code": 1 if error else 0, "error": error}
        ws.send_text(protocol.Message(protocol.END, end).encode())
    return requests


def test_each_hosts_images_are_listed_filtered_and_paged(api: TestClient) -> None:
    with agent(api, "one") as (one, one_id), agent(api, "two") as (two, _):
        report(one, BUSYBOX, OLD, DANGLING)
        report(two, BUSYBOX)
        images = eventually(lambda: len(listed(api)) == 4 and listed(api))
        assert [(i["host_name"], i["tags"]) for i in images] == [
            ("one", ["corral/busybox:latest"]),
            ("one", ["registry.local:5000/team/shop:old", "shop:1"]),
            ("one", []),
            ("two", ["corral/busybox:latest"]),
        ]
        first = images[0]
        assert first["host_id"] == one_id and first["short_id"] == "1" * 12 and first["size"] == 4_400_000
        assert first["containers"] == ["shop-web-1", "shop-web-2"] and first["in_use"] is True
        assert first["created"] == 1_700_000_000 and first["current"] is True
        assert [i["host_name"] for i in listed(api, host="two")] == ["two"]
        assert [i["tags"] for i in listed(api, host=one_id, in_use="false")] == [
            ["registry.local:5000/team/shop:old", "shop:1"],
            [],
        ]
        assert [i["host_name"] for i in listed(api, in_use="true")] == ["one", "two"]
        page = api.get("/v1/images", params={"environment": "default", "limit": 3}).json()
        rest = api.get("/v1/images", params={"environment": "default", "continue": page["continue"]}).json()
        assert len(page["data"]) == 3 and [i["id"] for i in page["data"] + rest["data"]] == [i["id"] for i in images]
        report(one, OLD)  # a new list replaces the old one
        assert eventually(lambda: len(listed(api, host="one")) == 1)
    assert eventually(lambda: {i["current"] for i in listed(api)} == {False})  # agents gone: lists kept, not current


def test_removing_an_image_goes_to_the_agent_and_is_refused_while_in_use(api: TestClient) -> None:
    with agent(api, "one") as (ws, host_id):
        report(ws, BUSYBOX, OLD)
        eventually(lambda: len(listed(api)) == 2)
        refused = api.delete(f"/v1/hosts/{host_id}/images/{BUSYBOX['id']}")
        assert refused.status_code == 409, refused.text
        assert "in use on one by shop-web-1, shop-web-2" in refused.json()["message"]
        missing = api.delete(f"/v1/hosts/{host_id}/images/{'9' * 64}")
        assert missing.status_code == 404 and missing.json()["field"] == "image"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            tag = quote("registry.local:5000/team/shop:old", safe="")  # a tag names it too, `/` and all
            removed = pool.submit(api.delete, f"/v1/hosts/{host_id}/images/{tag}")
            asked = answer_image_requests(ws, 1)
            assert removed.result(timeout=30).status_code == 204
        assert asked == [{"request_id": asked[0]["request_id"], "action": "remove", "id": OLD["id"]}]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the engine's own refusal is a 409 naming it
            failed = pool.submit(api.delete, f"/v1/hosts/{host_id}/images/{'2' * 12}")
            answer_image_requests(ws, 1, error="image is being used by a container created meanwhile")
            response = failed.result(timeout=30)
        assert response.status_code == 409 and "created meanwhile" in response.json()["message"]


@pytest.mark.parametrize(
    "params",
    [{"in_use": "maybe"}, {"limit": "0"}, {"continue": "garbage"}, {"host": "nowhere"}],
)
def test_bad_list_input_is_4xx_naming_the_field(api: TestClient, params: dict[str, str]) -> None:
    response = api.get("/v1/images", params={"environment": "default", **params})
    assert 400 <= response.status_code < 500, response.text


def test_a_bad_report_is_refused_and_changes_nothing(api: TestClient) -> None:
    with agent(api, "one") as (ws, _):
        report(ws, BUSYBOX)
        eventually(lambda: listed(api))
        report(ws, {"id": "not-an-id"})
        error = protocol.decode(ws.receive_text())
        while error.type != protocol.ERROR:
            error = protocol.decode(ws.receive_text())
        assert "images[0].id" in error.data["message"]
        assert [i["id"] for i in listed(api)] == [BUSYBOX["id"]]


def test_read_only_lists_but_may_not_remove_and_strangers_see_nothing(api: TestClient) -> None:
    reader = add_user(api, "reader", "default", "read-only")
    api.post("/v1/environments", json={"name": "elsewhere"})
    stranger = add_user(api, "stranger", "elsewhere", "owner")
    with agent(api, "one") as (ws, host_id):
        report(ws, OLD)
        eventually(lambda: listed(api))
        assert [i["id"] for i in listed(api, headers=reader)] == [OLD["id"]]
        refused = api.delete(f"/v1/hosts/{host_id}/images/{OLD['id']}", headers=reader)
        assert refused.status_code == 403, refused.text
        assert api.get("/v1/images", params={"environment": "default"}, headers=stranger).status_code == 404
        assert api.get("/v1/images", headers=stranger).json()["data"] == []
        assert api.delete(f"/v1/hosts/{host_id}/images/{OLD['id']}", headers=stranger).status_code == 404
