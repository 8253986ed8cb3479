"""The dangerous-container policy in a real browser: the environments page shows what an environment allows and
changes it, and a stack using an allowed dangerous field carries a badge and its warning on the stack page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration

PRIVILEGED = "services:\n  tool:\n    image: corral/busybox\n    command: [sleep, '1000']\n    privileged: true\n"


def test_an_environment_allows_privileged_from_its_page_and_the_stack_page_warns(
    page: Page, ui_server: ServerProcess
) -> None:
    name = unique("pol")
    client = ui_server.client()
    try:
        page.goto("/ui/environments")
        page.fill("#environment-form input[name=name]", name)
        page.click("#environment-form button[type=submit]")
        row = page.locator(f"tr[data-environment='{name}']")
        expect(row.locator("td.policy")).to_contain_text("none (locked)")

        row.locator("td.policy summary").click()
        row.locator("input[name=allow][value=privileged]").check()
        row.locator(".policy-form button[type=submit]").click()
        row = page.locator(f"tr[data-environment='{name}']")
        expect(row.locator("td.policy .warn-label")).to_have_text(["privileged"])
        assert client.get_environment(name)["allow"] == ["privileged"]

        stack = client.stacks.up(name, "tool", PRIVILEGED)
        page.goto(f"/ui/stacks/{stack['id']}")
        expect(page.locator("#stack-dangerous")).to_be_visible()
        expect(page.locator("#stack-warnings")).to_contain_text(
            'service "tool": privileged: true is allowed by setting privileged of environment'
        )
    finally:
        client.delete_environment(name)
