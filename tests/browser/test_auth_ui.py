"""Access control of the UI in a real browser: login, no session, cross-site posts and foreign websockets."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.browser.conftest import log_in, unique
from tests.browser.sockets import connect, open_socket
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration

SOCKET_TIMEOUT_S = 60  # a loaded machine answers within seconds (an event took over 10 s under a load average of 30)


def test_a_page_without_a_session_redirects_to_login(anonymous_page, ui_server: ServerProcess) -> None:
    anonymous_page.goto("/ui/hosts")
    assert "/ui/login" in anonymous_page.url
    assert "next=/ui/hosts" in anonymous_page.url
    anonymous_page.fill("input[name=access_key]", ui_server.access_key)
    anonymous_page.fill("input[name=secret_key]", "wrong")
    anonymous_page.click("button[type=submit]")
    assert anonymous_page.locator(".field-error").inner_text()
    assert "/ui/login" in anonymous_page.url


def test_login_sets_a_protected_cookie_and_pages_carry_a_csp(anonymous_page, ui_server: ServerProcess) -> None:
    log_in(anonymous_page, ui_server)
    cookies = {c["name"]: c for c in anonymous_page.context.cookies()}
    cookie = cookies["corral_session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    response = anonymous_page.goto("/ui/hosts")
    csp = response.all_headers()["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert ui_server.secret_key not in anonymous_page.content()


def test_a_cross_site_post_is_rejected(page, ui_server: ServerProcess) -> None:
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "corral_session")
    forged = urllib.request.Request(
        ui_server.url + "/ui/logout",
        data=b"csrf_token=guess",
        method="POST",
        headers={
            "Cookie": f"corral_session={session}",
            "Origin": "http://evil.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10, context=ui_server.ssl_context())
    assert refused.value.code == 403
    # same origin but no CSRF token: refused too, and the session still works afterwards
    forged.remove_header("Origin")
    forged.add_header("Origin", ui_server.url)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10, context=ui_server.ssl_context())
    assert refused.value.code == 403
    assert "/ui/login" not in page.goto("/ui/hosts").url


def test_a_websocket_with_a_foreign_origin_is_refused(page, ui_server: ServerProcess) -> None:
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "corral_session")
    url = ui_server.ws_url + "/ui/ws/events"
    headers = {"Cookie": f"corral_session={session}"}
    status, close_code, data_frames = open_socket(url, "http://evil.example", ui_server, SOCKET_TIMEOUT_S, headers)
    assert (status, close_code, data_frames) == (101, 4403, [])  # accepted, refused by its close code, no event
    own_origin = {**headers, "Origin": ui_server.url}
    with connect(url, ui_server, SOCKET_TIMEOUT_S, additional_headers=own_origin) as own:
        ui_server.client().create_registration_token("default", unique("wsprobe"))  # an event of the page's env
        event = json.loads(own.recv(timeout=SOCKET_TIMEOUT_S))
    assert event["type"] == "resource.change"
