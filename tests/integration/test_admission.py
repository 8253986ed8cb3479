"""Host admission through the `corral` CLI against a real server process: one-time, expiring and revoked tokens
(`tokens create|ls|rm`), and an environment that requires approval (`env create --require-approval`,
`hosts approve`, `env update`). Registrations are plain HTTP calls, as an agent makes them (no engine needed)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def server(module_server: ServerProcess) -> ServerProcess:
    """The module's one server: the token test works in `default`, the approval test in its own `guarded`."""
    return module_server


FACTS = {"hostname": "edge", "arch": "x86_64", "cpus": 1, "memory_bytes": 1 << 30}


def _register(server: ServerProcess, token: str, name: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/agent/register",
        json={"token": token, "name": name, "facts": FACTS},
        timeout=10,
        verify=server.ssl_context() or True,
    )


def _tokens(server: ServerProcess, env: str = "default") -> dict[str, dict[str, Any]]:
    listed = json.loads(server.cli("tokens", "ls", "--env", env, "--format", "json").stdout)
    return {t["id"]: t for t in listed}


def _row(table: str, key: str) -> str:
    return next(line for line in table.splitlines() if key in line)


def test_tokens_once_expiring_and_revoked_through_the_cli(server: ServerProcess) -> None:
    once = json.loads(server.cli("tokens", "create", "--once", "--description", "one shot", "--format", "json").stdout)
    assert once["max_uses"] == 1
    assert _register(server, once["token"], "first").status_code == 201
    refused = _register(server, once["token"], "second")
    assert refused.status_code == 403
    assert refused.json()["message"] == f"registration token {once['id']} has been used 1 of 1 time"

    timed = json.loads(server.cli("tokens", "create", "--expires", "2h", "--format", "json").stdout)
    assert timed["expires_at"] == pytest.approx(time.time() + 7200, abs=60)
    forever = server.cli("tokens", "create", "--expires", "never", "--max-uses", "5").stdout
    assert forever.startswith(f"corral agent --url {server.url} --token ")

    server.cli("tokens", "rm", timed["id"])
    revoked = _register(server, timed["token"], "third")
    assert revoked.status_code == 403 and "was revoked" in revoked.json()["message"]

    table = server.cli("tokens", "ls").stdout
    assert "used-up" in _row(table, once["id"]) and "1/1" in _row(table, once["id"])
    assert "one shot" in _row(table, once["id"])
    assert "revoked" in _row(table, timed["id"])
    listed = _tokens(server)
    assert {t["state"] for t in listed.values()} == {"used-up", "revoked", "active"}
    assert all(token["token"] not in json.dumps(listed) for token in (once, timed))

    bad = server.cli("tokens", "create", "--expires", "soon", check=False)
    assert bad.returncode == 1 and "expires" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert len(_tokens(server)) == 3


def test_a_host_waits_for_approval_through_the_cli(server: ServerProcess) -> None:
    server.cli("env", "create", "guarded", "--require-approval")
    assert "required" in _row(server.cli("env", "ls").stdout, "guarded")
    token = json.loads(server.cli("tokens", "create", "--env", "guarded", "--format", "json").stdout)
    assert _register(server, token["token"], "visitor").status_code == 201
    assert "pending (waiting for approval)" in _row(server.cli("hosts", "ls", "--env", "guarded").stdout, "visitor")

    approved = server.cli("hosts", "approve", "--env", "guarded", "visitor").stdout
    assert approved.strip() == "visitor registering"  # approved; its agent has not connected yet
    hosts = json.loads(server.cli("hosts", "ls", "--env", "guarded", "--format", "json").stdout)
    assert [(h["name"], h["state"]) for h in hosts] == [("visitor", "registering")]
    again = server.cli("hosts", "approve", "--env", "guarded", "visitor", check=False)
    assert again.returncode == 1 and "not waiting for approval" in again.stderr

    assert server.cli("env", "update", "guarded", "--no-require-approval").stdout.strip() == (
        "guarded approval not required"
    )
    assert _register(server, token["token"], "walk-in").status_code == 201
    walk_in = json.loads(server.cli("hosts", "inspect", "--env", "guarded", "walk-in").stdout)
    assert walk_in["state"] == "registering"
