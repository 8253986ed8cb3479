"""The secrets page in a real browser: create a secret, see it listed by name only (its value nowhere in the page),
a refused name shows the reason without echoing the value, and remove it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration

VALUE = "ui-secret-Value-8Hq2-never-shown"


def test_create_list_and_remove_a_secret_without_ever_showing_its_value(page: Page, ui_server: ServerProcess) -> None:
    name = unique("sec").replace("-", "_")
    page.goto("/ui/secrets")
    page.fill("#secret-form input[name=name]", name)
    page.fill("#secret-form textarea[name=value]", VALUE)
    page.click("#secret-form button[type=submit]")
    row = page.locator(f"tr[data-name='{name}']")
    expect(row).to_be_visible()
    assert VALUE not in page.content()
    assert name in [s["name"] for s in ui_server.client().secrets.list("default")]

    page.fill("#secret-form input[name=name]", "-bad name")
    page.fill("#secret-form textarea[name=value]", VALUE)
    page.click("#secret-form button[type=submit]")
    expect(page.locator("#secret-error")).to_contain_text("is invalid")
    assert VALUE not in page.content()
    expect(page.locator("#secret-form textarea[name=value]")).to_have_value("")

    page.locator(f"tr[data-name='{name}'] button[type=submit]").click()
    expect(page.locator("#secret-form")).to_be_visible()  # still the secrets page (a browser error page has no rows)
    expect(page.locator(f"tr[data-name='{name}']")).to_have_count(0)
    assert name not in [s["name"] for s in ui_server.client().secrets.list("default")]
