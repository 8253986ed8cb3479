"""Users in the browser: sign in with a user name and password, see what the role allows, the audit page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from corral.client import CorralClient
from corral.client.access import AccessClient
from corral.model.errors import CorralError
from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"
SLEEPER = """\
version: '2'
services:
  sleeper:
    image: corral/busybox:latest
    command: sleep 3600
"""


def _user(server: ServerProcess, role: str) -> str:
    name = unique(f"ui-{role}")
    with server.client() as client:
        access = AccessClient(client)
        access.create_user(name, PASSWORD)
        access.set_member("default", role, user=name)
    return name


def _sign_in(page: object, server: ServerProcess, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/ui/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def test_a_read_only_user_signs_in_sees_stacks_and_not_the_audit(anonymous_page, ui_server: ServerProcess) -> None:
    name = _user(ui_server, "read-only")
    _sign_in(anonymous_page, ui_server, name, "wrong password!")
    assert "wrong user name or password" in anonymous_page.locator(".field-error").inner_text()
    _sign_in(anonymous_page, ui_server, name)
    anonymous_page.wait_for_url(lambda url: "/ui/login" not in url)
    anonymous_page.goto("/ui/stacks")
    assert anonymous_page.locator("h1").first.inner_text().startswith("Stacks")
    anonymous_page.goto("/ui/hosts")
    expect(anonymous_page.locator("h1").first).to_contain_text("Hosts")
    expect(anonymous_page.locator(".field-error")).to_have_count(0)
    for page_path in ("/ui/stacks", "/ui/catalog", "/ui/events", "/ui/access"):  # every page reads fine
        anonymous_page.goto(page_path)
        expect(anonymous_page.locator("h1").first).not_to_contain_text("Something went wrong")
    anonymous_page.goto("/ui/environments")  # only the environments the user is a member of
    expect(anonymous_page.locator("#env-select option")).to_have_count(1)
    anonymous_page.goto("/ui/audit")
    assert "may not read audit" in anonymous_page.locator(".field-error").inner_text()
    anonymous_page.click("form.logout button")
    anonymous_page.wait_for_url(lambda url: "/ui/login" in url)
    with ui_server.client() as client:  # the session's key was ended by the logout
        entries = AccessClient(client).audit(user=name)["data"]
    newest = entries[0]
    assert (newest["action"], newest["status"], newest["auth_kind"]) == ("POST /v1/logout", 204, "session")


def test_an_owner_sees_their_sign_in_in_the_audit_page(anonymous_page, ui_server: ServerProcess) -> None:
    name = _user(ui_server, "owner")
    _sign_in(anonymous_page, ui_server, name)
    anonymous_page.wait_for_url(lambda url: "/ui/login" not in url)
    anonymous_page.goto("/ui/audit")
    assert anonymous_page.locator(".field-error").count() == 0
    assert "PUT /v1/environments/{ref}/members" in anonymous_page.locator("#audit").inner_text()
    anonymous_page.goto("/ui/hosts")  # an owner may add hosts: a registration token, made through the UI
    anonymous_page.click("#create-token")
    expect(anonymous_page.locator("#registration-command")).to_contain_text("corral agent --url")
    anonymous_page.goto(f"/ui/audit?user={name}")  # what the owner did: the UI's calls under their name
    table = anonymous_page.locator("#audit").inner_text()
    assert name in table and "session" in table and "POST /v1/environments/{ref}/registration-tokens" in table


def test_an_admin_creates_a_user_and_makes_them_a_member_in_the_ui(page, ui_server: ServerProcess) -> None:
    name = unique("ui-new")
    page.goto("/ui/access")
    page.fill("#user-form input[name=username]", name)
    page.fill("#user-form input[name=password]", PASSWORD)
    page.click("#user-form button[type=submit]")
    expect(page.locator("#users")).to_contain_text(name)
    page.fill("#member-form input[name=name]", name)
    page.select_option("#member-form select[name=role]", "restricted")
    page.click("#member-form button[type=submit]")
    expect(page.locator("#members")).to_contain_text(f"{name}")
    expect(page.locator("#members")).to_contain_text("restricted")
    page.fill("#user-form input[name=username]", "bad name!")
    page.fill("#user-form input[name=password]", PASSWORD)
    page.click("#user-form button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("user name")
    with ui_server.client() as client:
        members = {m["name"]: m["role"] for m in AccessClient(client).members("default")}
    assert members[name] == "restricted"


def test_a_user_creates_an_api_key_sees_its_secret_once_and_revokes_it(
    anonymous_page, ui_server: ServerProcess
) -> None:
    name = _user(ui_server, "member")
    _sign_in(anonymous_page, ui_server, name)
    anonymous_page.wait_for_url(lambda url: "/ui/login" not in url)
    anonymous_page.goto("/ui/keys")
    anonymous_page.fill("#key-form input[name=description]", "laptop")
    anonymous_page.click("#key-form button[type=submit]")
    banner = anonymous_page.locator("#new-key").inner_text()
    secret = banner.split("CORRAL_SECRET_KEY=", 1)[1].split()[0]
    access_key = banner.split("CORRAL_ACCESS_KEY=", 1)[1].split()[0]
    with CorralClient(ui_server.url, access_key, secret, ca=ui_server.ca_file) as client:
        assert AccessClient(client).me()["username"] == name
    anonymous_page.goto("/ui/keys")
    assert secret not in anonymous_page.content()
    expect(anonymous_page.locator("#keys")).to_contain_text("laptop")
    anonymous_page.once("dialog", lambda dialog: dialog.accept())
    anonymous_page.locator("#keys form button").first.click()
    expect(anonymous_page.locator("#keys")).not_to_contain_text("laptop")
    with (
        CorralClient(ui_server.url, access_key, secret, ca=ui_server.ca_file) as client,
        pytest.raises(CorralError, match="invalid API key"),
    ):
        AccessClient(client).me()


def test_a_read_only_user_may_not_stop_a_container_nor_open_its_shell(anonymous_page, ui_server: ServerProcess) -> None:
    admin = ui_server.client()
    stack = admin.stacks.up("default", unique("ro"), SLEEPER)
    try:
        container = wait_until(
            "the sleeper running",
            lambda: next(
                (c for c in admin.stacks.containers("default", stack=stack["id"]) if c["state"] == "running"), None
            ),
            timeout=90,
        )
        _sign_in(anonymous_page, ui_server, _user(ui_server, "read-only"))
        anonymous_page.wait_for_url(lambda url: "/ui/login" not in url)
        anonymous_page.goto(f"/ui/containers/{container['id']}")
        expect(anonymous_page.locator("#container-state")).to_have_text("running")  # reading is allowed
        anonymous_page.click("#action-stop")
        expect(anonymous_page.locator("#action-error")).to_contain_text("read-only role may not")
        anonymous_page.click("#shell-open")  # the websocket write: refused before a shell starts
        expect(anonymous_page.locator("#shell-status")).to_contain_text("read-only role may not")
        assert admin.stacks.get_container(container["id"])["desired"] == "running"
    finally:
        admin.stacks.delete(stack["id"])
