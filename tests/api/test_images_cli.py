"""`corral images ls|rm` with the CLI's own client against the in-process server and a fake agent: a row per host and
image (filters, json), `rm` resolving a tag with a registry path to the image's id, and refusals exiting 1."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from fastapi.testclient import TestClient

from corral.cli import images as _images  # noqa: F401 - registers `images`
from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture
from tests.api.test_images_api import BUSYBOX, OLD, answer_image_requests, listed, report
from tests.api.test_volumes_api import agent, eventually


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_images_ls_and_rm(api: TestClient) -> None:
    with agent(api, "one") as (ws, _):
        report(ws, BUSYBOX, OLD)
        eventually(lambda: len(listed(api)) == 2)
        code, out = corral("images", "ls")
        assert code == 0, out
        lines = out.strip().splitlines()
        assert lines[0].split() == ["HOST", "TAGS", "IMAGE", "ID", "SIZE", "CREATED", "CONTAINERS"]
        assert lines[1].split()[:4] == ["one", "corral/busybox:latest", "1" * 12, "4.20MiB"]
        assert lines[1].split()[-1] == "shop-web-1,shop-web-2"
        code, out = corral("images", "ls", "--unused", "--format", "json")
        assert code == 0 and [i["id"] for i in json.loads(out)] == [OLD["id"]]

        code, out = corral("images", "rm", "--host", "one", "corral/busybox")
        assert code == 1 and "in use on one by shop-web-1, shop-web-2" in out
        code, out = corral("images", "rm", "--host", "one", "nothing:9")
        assert code == 1 and "lists no image 'nothing:9'" in out
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ran = pool.submit(corral, "images", "rm", "--host", "one", "registry.local:5000/team/shop:old")
            asked = answer_image_requests(ws, 1)
            code, out = ran.result(timeout=30)
        assert code == 0, out
        assert asked[0]["id"] == OLD["id"] and out.strip() == f"Deleted: {OLD['id']}"
