"""`corral users|members|login|profile|keys|audit` with the CLI's own client speaking to the in-process app, each
request carrying the CLI's own credentials (the admin's from the environment, or the profile `login` saved)."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.cli import access as cli_access
from corral.cli import main as cli_main
from corral.client import CorralClient
from corral.entry import app

runner = CliRunner()
PASSWORD = "alice-has-a-long-password"


@pytest.fixture
def wired(api: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    def forward(request: httpx.Request) -> httpx.Response:
        answer = api.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers={
                "content-type": request.headers.get("content-type", "application/json"),
                "authorization": request.headers.get("authorization", ""),
            },
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    transport = httpx.MockTransport(forward)

    def client(url: str, access_key: str = "", secret_key: str = "", **_: Any) -> CorralClient:
        return CorralClient(url, access_key, secret_key, transport=transport)

    monkeypatch.setattr(cli_access, "CorralClient", client)
    monkeypatch.setattr(
        cli_main.Context, "client", lambda self: client("http://testserver", self.access_key, self.secret_key)
    )
    admin = api.admin_auth["Authorization"]  # type: ignore[attr-defined]
    access_key, secret_key = base64.b64decode(admin.split()[1]).decode().split(":", 1)
    config = tmp_path / "config" / "cli.json"
    monkeypatch.setenv("CORRAL_CONFIG", str(config))
    for name in ("CORRAL_ACCESS_KEY", "CORRAL_SECRET_KEY", "CORRAL_PROFILE", "CORRAL_ENVIRONMENT", "CORRAL_URL"):
        monkeypatch.delenv(name, raising=False)
    yield {"CORRAL_ACCESS_KEY": access_key, "CORRAL_SECRET_KEY": secret_key, "config": str(config)}


def corral(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env, input=stdin)
    return result.exit_code, result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_user_logs_in_works_with_a_profile_and_is_audited(wired: dict[str, str]) -> None:
    admin = {k: v for k, v in wired.items() if k.startswith("CORRAL_")}
    assert corral("users", "create", "alice", "--password-stdin", env=admin, stdin=PASSWORD + "\n")[0] == 0
    code, out = corral("members", "set", "alice", "--role", "member", "--env", "default", env=admin)
    assert (code, out) == (0, "user alice: member\n")

    code, out = corral("--url", "http://testserver", "login", "-u", "alice", "--password-stdin", stdin=PASSWORD)
    assert code == 0, out
    config = Path(wired["config"])
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    saved = json.loads(config.read_text())
    assert saved["current"] == "default" and saved["profiles"]["default"]["access_key"].startswith("U")
    assert PASSWORD not in config.read_text()

    code, out = corral("keys", "ls", "--format", "json")  # the profile's key, nothing in the environment
    assert code == 0, out
    assert [k["kind"] for k in json.loads(out)] == ["account"]
    code, out = corral("keys", "create", "--env", "default", "--role", "owner")
    assert code == 1 and "above your own" in out
    code, out = corral("keys", "create", "--env", "default", "--role", "member", "--description", "ci")
    assert code == 0 and "CORRAL_SECRET_KEY=" in out
    code, out = corral("profile", "ls", "--format", "json")
    assert code == 0 and "secret_key" not in out and json.loads(out)[0]["current"] is True
    code, out = corral("users", "ls")
    assert code == 1 and "administrator" in out

    code, out = corral("audit", "ls", "--format", "json", "--user", "alice", env=admin)
    assert code == 0, out
    entries = json.loads(out)
    assert {(e["action"], e["auth_kind"]) for e in entries} >= {
        ("POST /v1/environments/{ref}/keys", "account"),
    }
    code, out = corral("audit", "ls", "--format", "json", env=admin)
    assert PASSWORD not in out
    logins = [e for e in json.loads(out) if e["action"] == "POST /v1/login"]
    assert logins and logins[0]["actor"] == "alice" and logins[0]["status"] == 201
    code, out = corral("audit", "ls", "--since", "1h", env=admin)
    assert code == 0 and "alice" in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_only_profile_reads_and_is_refused_every_change(wired: dict[str, str], tmp_path: Path) -> None:
    admin = {k: v for k, v in wired.items() if k.startswith("CORRAL_")}
    assert corral("users", "create", "rita", "--password-stdin", env=admin, stdin=PASSWORD + "\n")[0] == 0
    assert corral("members", "set", "rita", "--role", "read-only", env=admin)[0] == 0
    code, out = corral(
        "--url",
        "http://testserver",
        "login",
        "-u",
        "rita",
        "--save-as",
        "ro",
        "--env",
        "default",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert code == 0, out
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  web:\n    image: corral/busybox\n")
    assert corral("up", "-d", "-f", str(compose), "-s", "app", env=admin)[0] == 0
    assert corral("--profile", "ro", "ps", "--format", "json")[0] == 0
    code, out = corral("--profile", "ro", "members", "ls")
    assert code == 0 and "rita" in out and "read-only" in out
    assert corral("--profile", "ro", "hosts", "ls")[0] == 0
    for args in (
        ["scale", "app/web=2"],
        ["rm", "app"],
        ["tokens", "create"],
        ["members", "set", "rita", "--role", "owner"],
    ):
        code, out = corral("--profile", "ro", *args)
        assert code == 1 and "read-only role may not" in out, (args, out)
    code, out = corral("--profile", "nope", "ps")
    assert code == 1 and "no profile 'nope'" in out
