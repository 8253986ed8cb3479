"""Host admission in a real browser: an environment that requires approval, made from the form; a pending host
approved from the hosts table; a one-time registration token created, listed with its state and revoked."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration


def test_approve_a_pending_host_and_revoke_a_token(page: Page, ui_server: ServerProcess) -> None:
    name = unique("uiguard")
    page.goto("/ui/environments")
    page.fill("#environment-form input[name=name]", name)
    page.check("#environment-form input[name=require_approval]")
    page.click("#environment-form button[type=submit]")
    expect(page.locator(f"#environments tr[data-environment={name}] td.approval")).to_contain_text("required")
    env = ui_server.client().get_environment(name)
    try:
        assert env["require_approval"] is True
        token = ui_server.client().create_registration_token(name)
        registered = httpx.post(
            f"{ui_server.url}/v1/agent/register",
            json={"token": token["token"], "name": "visitor", "facts": {"arch": "x86_64", "cpus": 1}},
            timeout=10,
            verify=ui_server.ssl_context() or True,
        )
        assert registered.status_code == 201, registered.text

        page.goto(f"/ui/hosts?env={env['id']}")
        row = page.locator("#hosts-rows tr[data-host=visitor]")
        expect(row.locator("td.host-state")).to_contain_text("pending")
        expect(row.locator("td.host-state")).to_contain_text("waiting for approval")
        row.get_by_role("button", name="Approve").click()
        expect(row.locator("td.host-state")).to_contain_text("registering")  # approved; no agent connected yet
        expect(row.get_by_role("button", name="Approve")).to_have_count(0)
        assert ui_server.client().get_host(registered.json()["host_id"])["state"] == "registering"

        page.check("#token-form input[name=once]")
        page.click("#create-token")
        expect(page.locator("#registration-command-text")).to_contain_text("--token ")
        page.reload()
        tokens = ui_server.client().list_registration_tokens(name)
        once = next(t for t in tokens if t["max_uses"] == 1)
        token_row = page.locator(f"#tokens-rows tr[data-token={once['id']}]")
        expect(token_row).to_contain_text("active")
        expect(token_row).to_contain_text("0/1")
        page.once("dialog", lambda dialog: dialog.accept())
        token_row.get_by_role("button", name="Revoke").click()
        expect(token_row).to_contain_text("revoked")
        expect(token_row.get_by_role("button", name="Revoke")).to_have_count(0)
        states = {t["id"]: t["state"] for t in ui_server.client().list_registration_tokens(name)}
        assert states == {token["id"]: "active", once["id"]: "revoked"}
    finally:
        ui_server.client().delete_environment(env["id"])
