"""The agent's edges without a network: credentials on disk, the registration call, socket URL, close codes."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path

import httpx
import pytest

from corral.agent.credentials_store import (
    RegistrationRejectedError,
    host_name_from,
    load_credentials,
    register,
    save_credentials,
    set_aside_credentials,
)
from corral.agent.session import Outcome, agent_socket_url, basic_authorization, classify_close
from corral.model.credentials import AgentCredentials
from corral.model.entities import HostFacts
from corral.model.errors import InvalidInput, Unavailable

CREDS = AgentCredentials(
    url="http://server:8080", host_id="host-1", environment_id="env-1", access_key="AK", secret_key="s3cret"
)
FACTS = HostFacts(hostname="node-1", arch="x86_64", os="linux", kernel="6.1", cpus=2, memory_bytes=1024)


def test_credentials_are_saved_private_and_load_back(tmp_path: Path) -> None:
    state = tmp_path / "agent"
    path = save_credentials(state, CREDS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert load_credentials(state) == CREDS
    assert [p.name for p in state.iterdir()] == ["credentials.json"]  # no temp file left behind


def test_saving_again_replaces_the_file(tmp_path: Path) -> None:
    save_credentials(tmp_path, CREDS)
    other = AgentCredentials(**{**CREDS.__dict__, "host_id": "host-2"})
    save_credentials(tmp_path, other)
    assert load_credentials(tmp_path) == other


def test_missing_credentials_are_none_and_corrupt_ones_an_error(tmp_path: Path) -> None:
    assert load_credentials(tmp_path) is None
    (tmp_path / "credentials.json").write_text("{")
    with pytest.raises(InvalidInput):
        load_credentials(tmp_path)


def test_rejected_credentials_are_set_aside(tmp_path: Path) -> None:
    save_credentials(tmp_path, CREDS)
    moved = set_aside_credentials(tmp_path)
    assert moved == tmp_path / "credentials.json.rejected"
    assert load_credentials(tmp_path) is None
    assert set_aside_credentials(tmp_path) is None


@pytest.mark.parametrize(
    ("hostname", "name"),
    [("Node-1", "node-1"), ("web_01.example.com", "web-01"), ("--x--", "x"), ("", "host"), ("a" * 80, "a" * 63)],
)
def test_host_name_from_hostname(hostname: str, name: str) -> None:
    assert host_name_from(hostname) == name


def _register(handler: httpx.MockTransport) -> AgentCredentials:
    async def go() -> AgentCredentials:
        async with httpx.AsyncClient(transport=handler) as client:
            return await register(client, "http://server:8080/", token="tok", name="n1", labels={"a": "b"}, facts=FACTS)

    return asyncio.run(go())


def test_register_posts_token_name_labels_and_facts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"host_id": "host-9", "environment_id": "env-1", "access_key": "AK", "secret_key": "SK"}
        return httpx.Response(201, json=body)

    creds = _register(httpx.MockTransport(handler))
    assert creds == AgentCredentials("http://server:8080", "host-9", "env-1", "AK", "SK")
    assert str(seen[0].url) == "http://server:8080/v1/agent/register"
    payload = json.loads(seen[0].content)
    assert payload == {
        "token": "tok",
        "name": "n1",
        "labels": {"a": "b"},
        "facts": {
            "hostname": "node-1",
            "arch": "x86_64",
            "os": "linux",
            "kernel": "6.1",
            "cpus": 2,
            "memory_bytes": 1024,
            "engine_version": "",
        },
    }


@pytest.mark.parametrize("status", [401, 409, 422])
def test_register_refusals_carry_the_server_message(status: int) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(status, json={"error": "x", "message": f"nope {status}"})
    )
    with pytest.raises(RegistrationRejectedError) as caught:
        _register(transport)
    assert caught.value.http_status == status
    assert caught.value.message == f"nope {status}"


def test_register_reads_fastapi_validation_details() -> None:
    detail = {"detail": [{"loc": ["body", "name"], "msg": "Field required"}]}
    with pytest.raises(RegistrationRejectedError, match="name: Field required"):
        _register(httpx.MockTransport(lambda request: httpx.Response(422, json=detail)))


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_register_server_trouble_is_retryable(status: int) -> None:
    with pytest.raises(Unavailable):
        _register(httpx.MockTransport(lambda request: httpx.Response(status, text="busy")))


def test_register_network_errors_are_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unavailable, match="connection refused"):
        _register(httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("url", "socket_url"),
    [
        ("http://server:8080", "ws://server:8080/v1/agent"),
        ("https://server/", "wss://server/v1/agent"),
        ("http://server:8080/corral/", "ws://server:8080/corral/v1/agent"),
    ],
)
def test_agent_socket_url(url: str, socket_url: str) -> None:
    assert agent_socket_url(url) == socket_url


@pytest.mark.parametrize("url", ["server:8080", "ftp://server", "http://"])
def test_agent_socket_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(InvalidInput):
        agent_socket_url(url)


def test_basic_authorization_header() -> None:
    header = basic_authorization(CREDS)
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "AK:s3cret"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (4404, Outcome.REJECTED),
        (4401, Outcome.REJECTED),
        (4409, Outcome.DROPPED),
        (1012, Outcome.DROPPED),
        (1006, Outcome.DROPPED),
        (None, Outcome.DROPPED),
    ],
)
def test_close_codes(code: int | None, outcome: Outcome) -> None:
    assert classify_close(code, "").outcome is outcome


def test_host_removed_reason_tells_what_to_do() -> None:
    assert classify_close(4404, "host removed").reason == (
        "host was removed from the server; re-register with a new token"
    )


def test_repeated_connection_failures_are_logged_once_a_minute() -> None:
    from corral.agent.run import _RepeatFilter

    quiet = _RepeatFilter()
    assert quiet.should_log("cannot reach server")
    assert not quiet.should_log("cannot reach server")
    assert quiet.should_log("connection closed (code 1012)")
    quiet.reset()
    assert quiet.should_log("connection closed (code 1012)")
