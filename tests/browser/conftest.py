"""Browser fixtures: one real server with two local hosts for all browser tests, headless Debian Chromium
driven by Playwright, and pages that are logged in (or not).

Why one server: starting a server and two netns hosts costs tens of seconds; every browser test shares them and
names its own stacks uniquely, so tests stay independent without paying the set-up again. The server lives as long
as this package's tests (not the whole session: its hosts would load the machine during the other tests). The
browser lives per module: Playwright's sync API keeps an asyncio loop running in the main thread while it is open,
which would break every later test that calls asyncio.run().
Why a network namespace of its own for Chromium (tests/browser/isolated_network.py): it fails every request in flight
with net::ERR_NETWORK_CHANGED when an interface of its namespace changes, and the integration tests on the other
pytest-xdist workers add and remove interfaces in the root namespace all the time. A server fixture calls
`browser_network.expose(server.port)` so that the browser reaches it at its usual URL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.isolated_network import BrowserNetwork
from tests.browser.isolated_network import browser_network as isolated_browser_network
from tests.integration.conftest import _missing_prerequisite, skip_or_fail
from tests.integration.servers import ServerProcess, wait_until

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium keeps trying to reach Google's services, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 60_000


@pytest.fixture(scope="package")
def browser_network() -> Iterator[BrowserNetwork]:
    """The network namespace the test browser runs in (the machine's, with a warning saying why, without root)."""
    with isolated_browser_network(CHROMIUM) as network:
        yield network


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory, browser_network: BrowserNetwork) -> Iterator[ServerProcess]:
    reason = _missing_prerequisite()
    if reason is not None:
        skip_or_fail(reason)
    data_dir: Path = tmp_path_factory.mktemp("ui") / "data"
    data_dir.mkdir()
    server = ServerProcess(data_dir)
    browser_network.expose(server.port)
    server.start()
    try:
        for name in ("uih1", "uih2"):
            server.cli("hosts", "create", "--driver", "local", name)
        wait_until(
            "two active hosts",
            lambda: [h for h in server.client().list_hosts() if h["state"] == "active"][1:],
            timeout=90,
        )
        yield server
    finally:
        server.teardown()


@pytest.fixture(scope="module")
def browser(browser_network: BrowserNetwork) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is not installed (run `make setup`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=browser_network.executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


def log_in(page: object, server: ServerProcess) -> None:
    page.goto(server.url + "/ui/login")  # type: ignore[attr-defined]
    page.fill("input[name=access_key]", server.access_key)  # type: ignore[attr-defined]
    page.fill("input[name=secret_key]", server.secret_key)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(lambda url: "/ui/login" not in url)  # type: ignore[attr-defined]


@pytest.fixture
def anonymous_page(browser: object, ui_server: ServerProcess) -> Iterator[object]:
    # the test server's own CA is not in Chromium's store: trust this one test server's certificate
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=ui_server.url, viewport=VIEWPORT, ignore_https_errors=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(anonymous_page: object, ui_server: ServerProcess) -> object:
    """A page logged in with the admin key."""
    log_in(anonymous_page, ui_server)
    return anonymous_page


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(2)}"
