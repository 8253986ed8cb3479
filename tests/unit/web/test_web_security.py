"""The UI's pure protections: origin checks, CSRF comparison, login redirects, cookie flags and session expiry."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from corral.web import sessions as sessions_module
from corral.web.app import _safe_next
from corral.web.security import cookie_should_be_secure, csrf_valid, same_origin
from corral.web.sessions import SessionStore


def connection(
    kind: str = "http", host: str = "127.0.0.1:8080", scheme: str = "http", **headers: str
) -> HTTPConnection:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": kind, "scheme": scheme, "server": (host.split(":")[0], 8080), "path": "/ui/x", "headers": raw}
    return HTTPConnection(scope)


@pytest.mark.parametrize(
    ("headers", "kind", "expected"),
    [
        ({"origin": "http://127.0.0.1:8080"}, "http", True),
        ({"origin": "http://evil.example"}, "http", False),
        ({"origin": "http://127.0.0.1:8081"}, "http", False),
        ({"origin": "null"}, "http", False),
        ({"referer": "http://127.0.0.1:8080/ui/hosts"}, "http", True),
        ({"referer": "http://evil.example/ui/hosts"}, "http", False),
        ({}, "http", True),  # curl and other non-browser clients send neither header
        ({}, "websocket", False),  # browsers always send Origin on websockets
        ({"origin": "http://127.0.0.1:8080"}, "websocket", True),
    ],
)
def test_same_origin(headers: dict[str, str], kind: str, expected: bool) -> None:
    assert same_origin(connection(kind, **headers)) is expected


def test_csrf_token_must_match_exactly() -> None:
    assert csrf_valid("abc", "abc")
    assert not csrf_valid("abc", "abd")
    assert not csrf_valid("abc", "")
    assert not csrf_valid("abc", None)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/hosts?env=1", "/ui/hosts?env=1"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/v1/hosts", "/ui/"),
        (None, "/ui/"),
    ],
)
def test_login_only_redirects_inside_the_ui(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected


def test_cookies_are_secure_on_https_and_loopback_only() -> None:
    assert cookie_should_be_secure(connection(host="127.0.0.1:8080"))
    assert cookie_should_be_secure(connection(host="localhost:8080"))
    assert cookie_should_be_secure(connection(host="10.0.0.5:8080", scheme="https"))
    assert not cookie_should_be_secure(connection(host="10.0.0.5:8080"))


def test_sessions_expire_when_idle_and_can_be_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(sessions_module.time, "monotonic", lambda: now[0])
    store = SessionStore("http://127.0.0.1:1")
    first = store.create("ak", "sk")
    assert first.csrf_token and first.token != first.csrf_token
    assert store.get(first.token) is first
    assert store.get("not-a-token") is None and store.get(None) is None
    now[0] += sessions_module.IDLE_TIMEOUT_SECONDS + 1
    assert store.get(first.token) is None
    second = store.create("ak", "sk")
    store.remove(second.token)
    assert store.get(second.token) is None
