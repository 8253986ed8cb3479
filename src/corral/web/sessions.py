"""Browser sessions of the web UI: the API key pair a user logged in with (or the session key pair the API
gave for their user name and password), behind a random cookie token.

Why server-side: the key pair is a full credential; it never goes back to the browser, not even encrypted.
The cookie holds only a random token (HttpOnly, SameSite=Strict, Secure wherever the browser accepts it), and each
session carries its own CSRF token for form posts. Sessions live in the server process: a restart asks users to
log in again, which is the safe failure.
"""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from corral.client import CorralClient

COOKIE_NAME = "corral_session"
IDLE_TIMEOUT_SECONDS = 12 * 3600


@dataclass
class Session:
    token: str
    access_key: str
    secret_key: str
    csrf_token: str
    api_url: str
    ssl_context: ssl.SSLContext | None = None  # trusts the server's own CA when /v1 is served over HTTPS
    environment_id: str = ""
    ends_with_logout: bool = False  # a password login: its session key is removed at logout
    last_seen: float = field(default_factory=time.monotonic)
    _client: CorralClient | None = None

    def client(self) -> CorralClient:
        """The API client of this session (one per session: httpx clients are thread-safe and keep connections)."""
        if self._client is None:
            self._client = CorralClient(self.api_url, self.access_key, self.secret_key, timeout=30, ca=self.ssl_context)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class SessionStore:
    def __init__(self, api_url: str, ca_file: Path | None = None) -> None:
        self.api_url = api_url
        self.ssl_context = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else None
        self.ca_file = ca_file
        self._ca_stamp = _stamp(ca_file)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, access_key: str, secret_key: str) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            access_key=access_key,
            secret_key=secret_key,
            csrf_token=secrets.token_urlsafe(32),
            api_url=self.api_url,
            ssl_context=self.ssl_context,
        )
        with self._lock:
            self._expire_idle()
            self._sessions[session.token] = session
        return session

    def _follow_ca(self) -> None:
        """A CA rotation rewrites the CA file (the bundle, then the new CA): trust what it holds from now on."""
        stamp = _stamp(self.ca_file)
        if self.ssl_context is not None and self.ca_file is not None and stamp != self._ca_stamp:
            self._ca_stamp = stamp
            self.ssl_context.load_verify_locations(cafile=str(self.ca_file))

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        self._follow_ca()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_seen > IDLE_TIMEOUT_SECONDS:
                del self._sessions[token]
                session.close()
                return None
            session.last_seen = now
            return session

    def remove(self, token: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(token or "", None)
        if session is not None:
            session.close()

    def _expire_idle(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > IDLE_TIMEOUT_SECONDS]:
            self._sessions.pop(token).close()


def _stamp(path: Path | None) -> tuple[int, int]:
    try:
        info = path.stat() if path is not None else None
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size) if info is not None else (0, 0)
