"""The volumes and images pages of issue 18 in a real browser, on the browser tests' shared server and its two local
hosts: an environment volume created from the page, listed on both hosts, refused removal while a container mounts
it (the reason shown), then removed; a read-only user sees the list and no form; the busybox image on a host's
images list, reached from the host page, in use by a running container."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from corral.client.access import AccessClient
from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration
PASSWORD = "a long enough password"
USES_VOLUME = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
    volumes: ["{volume}:/data"]
volumes:
  {volume}:
    external: true
"""


def _volumes(server: ServerProcess) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in server.client().volumes.list("default")}


def test_a_volume_is_created_listed_refused_while_in_use_and_removed(page: Any, ui_server: ServerProcess) -> None:
    name = unique("uivol")
    page.goto("/ui/hosts")
    page.click("nav.mainnav a[href='/ui/volumes']")
    page.fill("#volume-form input[name=name]", name)
    page.click("#volume-form button[type=submit]")
    row = page.locator(f"#volumes tr[data-name='{name}']")
    expect(row).to_contain_text("environment")
    expect(row).to_contain_text("uih1")
    expect(row).to_contain_text("uih2")
    expect(row).to_contain_text("unused")

    stack = ui_server.client().stacks.up("default", unique("uivols"), USES_VOLUME.format(volume=name))
    try:
        wait_until("the volume in use", lambda: _volumes(ui_server)[name]["containers"], timeout=90)
        page.reload()
        expect(row.locator("[data-field=containers]")).to_contain_text(stack["name"])
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button.danger").click()
        expect(page.locator("#volume-error")).to_contain_text("in use by")
        expect(page.locator("#volume-error")).to_contain_text(stack["name"])
        assert name in _volumes(ui_server)
    finally:
        ui_server.client().stacks.delete(stack["id"])
    wait_until("the volume unused", lambda: not _volumes(ui_server)[name]["containers"], timeout=90)

    page.goto("/ui/volumes")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    page.wait_for_load_state()
    assert page.locator("#volume-error").count() == 0, page.locator("#volume-error").inner_text()
    expect(page.locator(f"#volumes tr[data-name='{name}']")).to_have_count(0)
    assert name not in _volumes(ui_server)


def test_a_read_only_user_sees_volumes_and_images_but_no_form(anonymous_page: Any, ui_server: ServerProcess) -> None:
    user = unique("ui-ro-vol")
    with ui_server.client() as client:
        AccessClient(client).create_user(user, PASSWORD)
        AccessClient(client).set_member("default", "read-only", user=user)
    page = anonymous_page
    page.goto(ui_server.url + "/ui/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/ui/login" not in url)
    page.goto("/ui/volumes")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#volume-form")).to_have_count(0)
    page.goto("/ui/images")
    expect(page.locator("section.host-images")).to_have_count(2)
    expect(page.locator("section.host-images button.danger")).to_have_count(0)


def test_the_busybox_image_is_listed_on_a_hosts_images(page: Any, ui_server: ServerProcess) -> None:
    host = next(h for h in ui_server.client().list_hosts("default") if h["name"] == "uih1")
    page.goto(f"/ui/hosts/{host['id']}")
    expect(page.locator("#host-usage [data-usage=disk]")).to_contain_text("image")
    page.click("#host-images-link")
    section = page.locator("section.host-images[data-host='uih1']")
    expect(section).to_have_count(1)
    expect(page.locator("section.host-images")).to_have_count(1)  # only the host asked for
    busybox = section.locator("tr[data-tags~='corral/busybox:latest']")
    expect(busybox).to_have_count(1)
    expect(busybox).to_contain_text("MiB")
    expect(busybox.locator("td.mono")).to_have_text(busybox.get_attribute("data-id")[7:19])
