"""`corral pull STACK [SERVICE...]` with the CLI's own client against the in-process server and a fake agent: one
line per host and image, `-q` prints only failures, `--format json`, exit code 1 when a pull failed."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from fastapi.testclient import TestClient

from corral.cli import pulls as _pulls  # noqa: F401 - registers `pull`
from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture
from tests.api.test_pull_api import answer_pulls
from tests.api.test_volumes_api import agent, eventually

COMPOSE = "services:\n  web:\n    image: corral/web:1\n  lb:\n    image: rancher/lb-service-haproxy\n"
RANCHER = (
    "services:\n  lb:\n    lb_config:\n      port_rules:\n        - {source_port: 80, target_port: 80, service: web}\n"
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_pull_prints_a_line_per_host_and_image_and_fails_on_a_failed_pull(api: TestClient) -> None:
    with agent(api, "one") as (ws, _):
        eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active"])
        stack = api.post("/v1/stacks", json={"name": "shop", "compose": COMPOSE, "rancher_compose": RANCHER})
        assert stack.status_code == 201, stack.text
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ran = pool.submit(corral, "pull", "shop")
            answer_pulls(ws, {"corral/web:1": ("pulled", "sha256:abc")})
            code, out = ran.result(timeout=30)
        assert code == 0, out
        assert "one  web  corral/web:1  pulled  sha256:abc" in out
        assert "lb: skipped, a load balancer" in out

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ran = pool.submit(corral, "pull", "shop", "web", "-q")
            answer_pulls(ws, {"corral/web:1": ("failed", "pull access denied for corral/web")})
            code, out = ran.result(timeout=30)
        assert code == 1
        assert out.strip() == "one  web  corral/web:1  failed  pull access denied for corral/web"

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ran = pool.submit(corral, "pull", "shop", "--format", "json")
            answer_pulls(ws, {"corral/web:1": ("present", "sha256:abc")})
            code, out = ran.result(timeout=30)
        assert code == 0, out
        answer = json.loads(out[: out.rindex("}") + 1])
        assert [(r["host"], r["status"]) for r in answer["results"]] == [("one", "present")]

        code, out = corral("pull", "shop", "nothing")
        assert code == 1 and "nothing" in out
