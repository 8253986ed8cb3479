"""`corral run -d`, `ps` and `rm` of standalone containers with the CLI's own client against the in-process server
and a fake agent: the name printed, the `(standalone)` row, `ps --standalone`, `rm NAME` (and not when a stack has
that name too), a bad flag's error naming it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from corral.cli import run as _run  # noqa: F401 - registers `run`
from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture
from tests.api.test_volumes_api import agent, eventually


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_run_detached_lists_and_removes_a_standalone_container(api: TestClient) -> None:
    with agent(api, "one"):
        eventually(lambda: [h["state"] for h in api.get("/v1/hosts").json()["data"]] == ["active"])
        code, out = corral("run", "-d", "--name", "web", "-e", "A=1", "-p", "8080:80", "corral/busybox", "sleep", "60")
        assert (code, out.strip()) == (0, "web"), out
        code, out = corral("ps", "-a")
        assert code == 0 and "(standalone)" in out and "web" in out, out
        code, out = corral("ps", "--standalone", "-a", "-q")
        assert code == 0 and out.split() == [api.get("/v1/containers?standalone=true").json()["data"][0]["id"]]

        code, out = corral("run", "-d", "--restart", "sometimes", "corral/busybox")
        assert code == 1 and "restart" in out, out
        code, out = corral("run", "-d", "-e", "novalue", "corral/busybox")
        assert code == 1 and "novalue" in out, out

        compose = "services:\n  app:\n    image: corral/busybox\n"
        assert api.post("/v1/stacks", json={"name": "web", "compose": compose}).status_code == 201
        code, out = corral("rm", "web")
        assert code == 1 and "both a stack and a standalone container" in out, out
        assert api.delete(f"/v1/stacks/{api.get('/v1/stacks').json()['data'][0]['id']}").status_code == 204
        code, out = corral("rm", "web")
        assert (code, out.strip()) == (0, "web"), out
        assert api.get("/v1/containers?standalone=true").json()["data"] == []
        code, out = corral("rm", "web")
        assert code == 1 and "not found" in out, out
