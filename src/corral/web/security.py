"""Browser-facing protections of the UI: Content-Security-Policy and friends on every response, same-origin checks
for form posts and websockets, and the per-session CSRF token.

Why both Origin and a token: SameSite=Strict already keeps the cookie off cross-site requests in current browsers;
the Origin check and the CSRF token make a forged post fail even where the cookie would be sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

# htmx and our scripts are files served by us; xterm.js sets element styles at run time, hence 'unsafe-inline' for
# styles only (no inline script, no eval anywhere).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def add_security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and request.url.path.startswith(("/ui/static/", "/ui/vendor/")):
            response.headers[name] = "public, max-age=3600"
            continue
        response.headers.setdefault(name, value)
    return response


def same_origin(connection: HTTPConnection) -> bool:
    """True when the request's Origin (or, lacking it, Referer) names this server. Browsers always send Origin on
    websockets and cross-site posts; a request with neither header comes from a non-browser client."""
    origin = connection.headers.get("origin") or connection.headers.get("referer")
    host = connection.headers.get("host", "")
    if not origin:
        return bool(connection.scope["type"] == "http")
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host.lower()


def csrf_valid(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected, presented or "")


def cookie_should_be_secure(connection: HTTPConnection) -> bool:
    """Secure cookies need HTTPS, except on loopback, which browsers treat as a secure context. A UI reached over
    plain HTTP on another address gets a non-Secure cookie (and a warning banner) rather than no login at all."""
    if connection.url.scheme in ("https", "wss"):
        return True
    host = (connection.url.hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")
