"""Creating an environment in a real browser with the overlay encryption chosen (issue 13): encrypted by default,
plain VXLAN when the form says off, and each shown as such in the environments table."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration


def test_overlay_encryption_is_chosen_when_creating_an_environment(page: Page, ui_server: ServerProcess) -> None:
    secure, plain = unique("uiwg"), unique("uivx")
    page.goto("/ui/environments")
    choice = page.locator("#environment-form select[name=encryption]")
    expect(choice).to_have_value("on")  # encrypted unless the operator says otherwise
    page.fill("#environment-form input[name=name]", secure)
    page.click("#environment-form button[type=submit]")
    expect(page.locator(f"#environments tr[data-environment={secure}] td.overlay")).to_contain_text("encrypted")

    page.fill("#environment-form input[name=name]", plain)
    page.select_option("#environment-form select[name=encryption]", "off")
    page.click("#environment-form button[type=submit]")
    expect(page.locator(f"#environments tr[data-environment={plain}] td.overlay")).to_contain_text("not encrypted")
    client = ui_server.client()
    try:
        assert client.get_environment(secure)["network"]["encryption"] is True
        assert client.get_environment(plain)["network"]["encryption"] is False
    finally:
        for name in (secure, plain):
            client.delete_environment(client.get_environment(name)["id"])
