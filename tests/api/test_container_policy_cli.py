"""`corral env create/update --allow/--deny/--lock` and the warning `corral up` prints, with the CLI's own client
speaking to the in-process application (an httpx transport hands each request to the test client)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.cli import main as cli_main
from corral.client import CorralClient
from corral.entry import app

runner = CliRunner()
COMPOSE = "services:\n  web:\n    image: corral/busybox\n    command: [sleep, '1000']\n    network_mode: host\n"


@pytest.fixture
def cli(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def forward(request: httpx.Request) -> httpx.Response:
        answer = api.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    transport = httpx.MockTransport(forward)
    monkeypatch.setattr(
        cli_main.Context, "client", lambda _self: CorralClient("http://testserver", transport=transport)
    )
    yield


def corral(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_env_allow_deny_lock_and_the_up_warning(tmp_path: Path) -> None:
    code, out = corral("env", "create", "edge", "--allow", "privileged,cap_add", "--allow", "devices")
    assert code == 0, out
    code, out = corral("env", "ls", "--format", "json")
    assert {e["name"]: e["allow"] for e in json.loads(out)}["edge"] == ["privileged", "cap_add", "devices"]
    assert corral("env", "update", "edge", "--deny", "cap_add") == (0, "edge: allows privileged, devices\n")
    assert corral("env", "update", "edge", "--lock") == (0, "edge: allows no dangerous setting\n")
    assert corral("env", "update", "edge", "--allow", "all") == (0, "edge: allows all\n")
    code, out = corral("env", "update", "edge", "--deny", "privileged")
    assert code == 0 and out == "edge: allows cap_add, host_network, host_pid, host_ipc, devices, system_mounts\n"
    code, out = corral("env", "update", "edge", "--allow", "root")
    assert code == 1 and "'root' is not a container setting" in out

    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    code, out = corral("up", "-d", "--env", "default", "-f", str(compose), "-s", "app")
    assert code == 1
    assert 'service "web": network_mode: host is not allowed in environment "default"' in out
    assert "corral env update default --allow host_network" in out
    assert corral("env", "update", "default", "--allow", "host_network") == (0, "default: allows host_network\n")
    code, out = corral("up", "-d", "--env", "default", "-f", str(compose), "-s", "app")
    assert code == 0, out
    assert 'warning: service "web": network_mode: host is allowed by setting host_network' in " ".join(out.split())
