"""The operator's pages of issue 18 in a real browser: registries (the password never comes back), API keys (a
secret shown once), catalog sources, a stack's stop/start, Compose view and upgrade, a host's usage, the logs pane
of a quiet container, and what a read-only user is offered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from corral.client import CorralClient
from corral.client.access import AccessClient
from corral.model.errors import CorralError
from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"
QUIET = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
"""
TWO = "version: '2'\nservices:\n  web:\n    scale: 2\n"
CONTAINER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def quiet_stack(ui_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """A stack of two containers that never log, made through the API and shared by this module's stack tests."""
    name = unique("uiops")
    stack = ui_server.client().stacks.up("default", name, QUIET, rancher_compose=TWO)
    try:
        yield stack
    finally:
        ui_server.client().stacks.delete(stack["id"])


def _expect_running(page: Any, server: ServerProcess, stack: dict[str, Any], count: int) -> None:
    """`count` running containers shown; on failure the message carries the API's view of the stack."""
    try:
        expect(page.locator("#containers tr[data-state=running]")).to_have_count(count, timeout=CONTAINER_TIMEOUT_MS)
    except AssertionError as exc:
        view = server.client().stacks.get(stack["id"])
        rows = [
            (c["name"], c["state"], c.get("desired"), c.get("host"), c.get("reason"))
            for s in view["services"]
            for c in s["containers"]
        ]
        raise AssertionError(f"{exc}\nAPI: {view['state']} {rows}") from None


def _read_only_user(server: ServerProcess) -> str:
    name = unique("ui-ro")
    with server.client() as client:
        access = AccessClient(client)
        access.create_user(name, PASSWORD)
        access.set_member("default", "read-only", user=name)
    return name


def test_a_registry_is_added_listed_without_its_password_changed_and_removed(page, ui_server: ServerProcess) -> None:
    server, password, new_password = f"{unique('reg')}.example:5000", "first-Secret-9781", "second-Secret-5522"
    page.goto("/ui/registries")
    page.fill("#registry-form input[name=server]", server)
    page.fill("#registry-form input[name=username]", "robot")
    page.fill("#registry-form input[name=password]", password)
    page.click("#registry-form button[type=submit]")
    row = page.locator(f"#registries tr[data-server='{server}']")
    expect(row).to_contain_text("robot")
    assert password not in page.content()
    assert [r["username"] for r in ui_server.client().list_registries("default") if r["server"] == server] == ["robot"]

    row.locator("summary").click()
    row.locator("input[name=username]").fill("deployer")
    row.locator("input[name=password]").fill(new_password)
    row.get_by_role("button", name="Save").click()
    expect(page.locator(f"#registries tr[data-server='{server}']")).to_contain_text("deployer")
    assert new_password not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#registries tr[data-server='{server}']").get_by_role("button", name="Remove").click()
    expect(page.locator(f"#registries tr[data-server='{server}']")).to_have_count(0)
    assert server not in {r["server"] for r in ui_server.client().list_registries("default")}


def test_an_environment_key_shows_its_secret_once_works_and_is_revoked(page, ui_server: ServerProcess) -> None:
    description = unique("ci-bot")
    page.goto("/ui/keys")
    page.fill("#environment-key-form input[name=description]", description)
    page.select_option("#environment-key-form select[name=role]", "read-only")
    page.click("#environment-key-form button[type=submit]")
    banner = page.locator("#new-key").inner_text()
    access_key = banner.split("CORRAL_ACCESS_KEY=", 1)[1].split()[0]
    secret = banner.split("CORRAL_SECRET_KEY=", 1)[1].split()[0]
    with CorralClient(ui_server.url, access_key, secret, ca=ui_server.ca_file) as client:
        client.stacks.list_all("default")  # reads its environment
        with pytest.raises(CorralError, match="read-only"):
            client.add_registry("default", "refused.example", "u", "p")  # and changes nothing there
    page.goto("/ui/keys")
    assert secret not in page.content()
    row = page.locator(f"#environment-keys tr[data-key='{access_key}']")
    expect(row).to_contain_text(description)
    expect(row).to_contain_text("read-only")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#environment-keys tr[data-key='{access_key}']")).to_have_count(0)
    with (
        CorralClient(ui_server.url, access_key, secret, ca=ui_server.ca_file) as client,
        pytest.raises(CorralError, match="invalid API key"),
    ):
        client.stacks.list_all("default")


def test_a_catalog_source_is_added_and_removed(page, ui_server: ServerProcess) -> None:
    name = unique("src")
    url = "https://127.0.0.1:9/templates.git"  # nothing listens there: the source is kept with its fetch error
    try:
        page.goto("/ui/catalog")
        page.fill("#source-form input[name=name]", "Bad Name!")
        page.fill("#source-form input[name=url]", url)
        page.click("#source-form button[type=submit]")
        expect(page.locator("#source-error")).to_contain_text("not a valid name")  # the API's refusal, in place
        expect(page.locator("#source-form input[name=url]")).to_have_value(url)

        page.fill("#source-form input[name=name]", name)
        page.click("#source-form button[type=submit]")
        row = page.locator(f"#catalog-sources tr[data-source='{name}']")
        expect(row).to_contain_text(url)
        expect(row).to_contain_text("error")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Remove").click()
        expect(page.locator(f"#catalog-sources tr[data-source='{name}']")).to_have_count(0)
    finally:
        for source in ui_server.client().catalog.sources("default"):
            if source["name"] == name:
                ui_server.client().catalog.remove(source["id"])


def test_a_stack_is_stopped_then_started_and_shows_its_compose_files(
    page, ui_server: ServerProcess, quiet_stack: dict[str, Any]
) -> None:
    page.goto(f"/ui/stacks/{quiet_stack['id']}")
    _expect_running(page, ui_server, quiet_stack, 2)
    expect(page.locator("#stack-state")).to_have_text("active", timeout=CONTAINER_TIMEOUT_MS)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#stack-stop button").click()
    expect(page.locator("#stack-state")).to_have_text("inactive", timeout=CONTAINER_TIMEOUT_MS)
    expect(page.locator("#containers tr[data-state=running]")).to_have_count(0)
    expect(page.locator("#stack-stop")).to_have_count(0)  # nothing left to stop: only Start is offered
    stopped = ui_server.client().stacks.containers("default", quiet_stack["name"])
    assert {c["state"] for c in stopped if not c.get("retired")} <= {"exited", "stopped"}

    page.locator("#stack-start button").click()
    expect(page.locator("#stack-state")).to_have_text("active", timeout=CONTAINER_TIMEOUT_MS)
    _expect_running(page, ui_server, quiet_stack, 2)

    page.locator("#compose-link").click()
    compose = page.locator(".compose-file[data-file='docker-compose.yml'] pre")
    expect(compose).to_contain_text('command: ["sleep", "3600"]')
    expect(page.locator(".compose-file[data-file='rancher-compose.yml'] pre")).to_contain_text("scale: 2")


def test_a_stack_is_upgraded_from_its_edited_compose_file(
    page, ui_server: ServerProcess, quiet_stack: dict[str, Any]
) -> None:
    page.goto(f"/ui/stacks/{quiet_stack['id']}/upgrade")
    compose = page.locator("#upgrade-form textarea[name=compose]")
    expect(compose).to_have_value(re.compile("sleep"))
    page.fill("#upgrade-form input[name=batch_size]", "0")
    page.click("#upgrade-form button[type=submit]")
    expect(page.locator("#batch_size-error")).to_contain_text("batch size")  # refused, nothing applied
    page.fill("#upgrade-form textarea[name=compose]", QUIET.replace('"3600"', '"3601"'))
    page.uncheck("#upgrade-form input[name=rolling]")
    page.click("#upgrade-form button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/stacks/[^/?]+\?upgraded=1$"))
    expect(page.locator("#upgraded")).to_be_visible()
    assert '"3601"' in ui_server.client().stacks.files(quiet_stack["id"])["files"]["docker-compose.yml"]
    expect(page.locator("#stack-state")).to_have_text("active", timeout=CONTAINER_TIMEOUT_MS)
    _expect_running(page, ui_server, quiet_stack, 2)


def test_the_logs_pane_of_a_quiet_container_says_it_is_connected(
    page, ui_server: ServerProcess, quiet_stack: dict[str, Any]
) -> None:
    def running() -> list[dict[str, Any]]:
        containers = ui_server.client().stacks.containers("default", quiet_stack["name"])
        return [c for c in containers if c["state"] == "running" and not c.get("retired")]

    container = wait_until("a running container", running, timeout=90)[0]
    page.goto(f"/ui/containers/{container['id']}")
    expect(page.locator("#logs-status")).to_have_text("connected: no output yet")
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/ui/static/favicon.svg")
    icon = page.request.get("/ui/static/favicon.svg")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")


def test_a_host_page_shows_cpu_and_memory_use(page, ui_server: ServerProcess, quiet_stack: dict[str, Any]) -> None:
    host = next(h for h in ui_server.client().list_hosts() if h["name"] == "uih1")
    page.goto(f"/ui/hosts/{host['id']}")
    expect(page.locator("#host-usage [data-usage=cpu]")).to_contain_text(f"% of {host['facts']['cpus']} CPU")
    expect(page.locator("#host-usage [data-usage=memory]")).to_contain_text(" of ")
    expect(page.locator("#host-usage .usage-scope")).to_contain_text("running Corral container")


def test_a_read_only_user_sees_the_pages_but_is_offered_no_change(
    anonymous_page, ui_server: ServerProcess, quiet_stack: dict[str, Any]
) -> None:
    page = anonymous_page
    page.goto(ui_server.url + "/ui/login")
    page.fill("input[name=username]", _read_only_user(ui_server))
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/ui/login" not in url)
    page.goto("/ui/registries")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#registry-form")).to_have_count(0)
    page.goto("/ui/containers")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#run-form")).to_have_count(0)
    page.goto("/ui/keys")
    expect(page.locator("#key-form")).to_be_visible()  # their own keys, with their own (read-only) rights
    expect(page.locator("#environment-key-form")).to_have_count(0)
    page.goto(f"/ui/stacks/{quiet_stack['id']}")
    expect(page.locator("#stack-state")).to_be_visible()
    expect(page.locator("#stack-stop, #stack-start, #stack-upgrade-link")).to_have_count(0)
    page.goto(f"/ui/stacks/{quiet_stack['id']}/compose")
    expect(page.locator(".compose-file[data-file='docker-compose.yml'] pre")).to_contain_text("sleep")
    expect(page.locator("#upgrade-link")).to_have_count(0)
    # a forged post is still refused by the API, whatever the page offered
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(f"/ui/stacks/{quiet_stack['id']}/stop", form={"csrf_token": csrf or ""})
    assert answer.status == 403
