"""A directory user in the browser: alice's LDAP group maps to `member`; she signs in to the UI with her
directory password and deploys a stack, which the audit log files under her name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from corral.client.access import AccessClient
from tests.browser.conftest import TIMEOUT_MS, VIEWPORT, unique
from tests.browser.isolated_network import BrowserNetwork
from tests.integration.servers import ServerProcess
from tests.security.slapd import ROOT_DN, ROOT_PASSWORD, SUFFIX, USERS, Directory, slapd_bin, start_directory

pytestmark = pytest.mark.integration
COMPOSE = "services:\n  web:\n    image: corral/busybox\n    command: sleep 3600\n"


@pytest.fixture(scope="module")
def ldap_server(
    tmp_path_factory: pytest.TempPathFactory, browser_network: BrowserNetwork
) -> Iterator[tuple[ServerProcess, Directory]]:
    if slapd_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the LDAP sign-in test: slapd is not installed (run `make setup`)")
        pytest.skip("slapd is not installed (run `make setup`)")
    directory = start_directory(tmp_path_factory.mktemp("slapd"))
    data_dir: Path = tmp_path_factory.mktemp("ldapui") / "data"
    data_dir.mkdir()
    server = ServerProcess(
        data_dir,
        CORRAL_LDAP_URL=directory.url,
        CORRAL_LDAP_CA_FILE=str(directory.ca_file),
        CORRAL_LDAP_BIND_DN=ROOT_DN,
        CORRAL_LDAP_BIND_PASSWORD=ROOT_PASSWORD,
        CORRAL_LDAP_USER_BASE=f"ou=people,{SUFFIX}",
        CORRAL_LDAP_GROUP_BASE=f"ou=groups,{SUFFIX}",
    )
    browser_network.expose(server.port)
    try:
        server.start()
        yield server, directory
    finally:
        server.teardown()
        directory.stop()


def test_a_directory_member_signs_in_and_deploys_a_stack(
    browser: object, ldap_server: tuple[ServerProcess, Directory]
) -> None:
    server, _ = ldap_server
    with server.client() as client:
        AccessClient(client).set_member("default", "member", group="developers")
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT, ignore_https_errors=True)  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/ui/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", USERS["alice"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/ui/login" not in url)
        name = unique("ldapapp")
        page.goto("/ui/stacks/new")
        page.fill("input[name=name]", name)
        page.fill("textarea[name=compose]", COMPOSE)
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile(r"/ui/stacks/[^/?]+\?imported=1$"))
        expect(page.locator("h1").first).to_contain_text(name)
    finally:
        context.close()
    with server.client() as client:
        entries = AccessClient(client).audit(user="alice")["data"]
    deployed = [e for e in entries if e["action"] in ("PUT /v1/stacks", "POST /v1/stacks")]
    assert deployed and deployed[0]["auth_kind"] == "session" and deployed[0]["status"] in (200, 201)
