"""The container page in a real browser: the log shows a line the container printed, the resource charts receive
samples, `echo hi` typed into the shell comes back as `hi`, and stop / start from the page change the state shown.

One stack (made through the API) serves the whole module; it is removed at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import unique
from tests.browser.sockets import open_socket
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

READY_LINE = "u3-ready-7f3a"
TALKER = f"""\
version: '2'
services:
  talker:
    image: corral/busybox:latest
    command: ["sh", "-c", "echo {READY_LINE}; exec sleep 3600"]
"""
RUNNING_TIMEOUT_S = 90
HANDSHAKE_TIMEOUT_S = 60  # a loaded machine answers within seconds; a hung server fails the test well before 300 s


@pytest.fixture(scope="module")
def container(ui_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """The running container of a one-service stack."""
    client = ui_server.client()
    stack = client.stacks.up("default", unique("uictr"), TALKER)
    try:
        yield wait_until(
            "the talker container running",
            lambda: next(
                (c for c in client.stacks.containers("default", stack=stack["id"]) if c["state"] == "running"), None
            ),
            timeout=RUNNING_TIMEOUT_S,
        )
    finally:
        client.stacks.delete(stack["id"])


def test_the_page_shows_the_container_its_log_and_live_stats(page, ui_server: ServerProcess, container) -> None:
    page.goto(f"/ui/containers/{container['id']}")
    expect(page.locator("#container-state")).to_have_text("running")
    expect(page.locator(".facts")).to_contain_text(container["host"])
    expect(page.locator(".crumbs a", has_text=container["stack"])).to_have_attribute(
        "href", f"/ui/stacks/{container['stack_id']}"
    )
    expect(page.locator("#logs")).to_contain_text(READY_LINE)
    expect(page.locator("#logs-status")).to_have_text("live")
    for chart in ("cpu", "memory", "network"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-samples", re.compile(r"^[1-9]"))
    expect(page.locator("#value-memory")).to_contain_text(re.compile(r"\d.* / \d"))
    assert page.locator("#chart-cpu polyline").get_attribute("points")

    # the same figures through the API (one sample)
    (sample,) = list(ui_server.client().stacks.stats(container["id"]))
    assert sample["memory_limit"] > 0 and sample["memory_usage"] > 0 and sample["cpu_percent"] >= 0


def test_echo_hi_in_the_shell_comes_back(page, container) -> None:
    page.goto(f"/ui/containers/{container['id']}")
    page.click("#shell-open")
    expect(page.locator("#shell-status")).to_have_text("connected")
    expect(page.locator(".xterm-rows")).to_contain_text("#")  # the shell's prompt
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.type("echo hi")
    page.keyboard.press("Enter")
    expect(page.locator(".xterm-rows > div").filter(has_text=re.compile(r"^\s*hi\s*$"))).to_have_count(1)

    page.click("#shell-close")
    expect(page.locator("#shell-status")).to_have_text(re.compile("closed|exited|ended"))
    expect(page.locator("#shell-open")).to_be_enabled()


def test_stop_and_start_from_the_page(page, ui_server: ServerProcess, container) -> None:
    page.goto(f"/ui/containers/{container['id']}")
    expect(page.locator("#logs")).to_contain_text(READY_LINE)
    page.click("#action-stop")
    expect(page.locator("#container-state")).to_have_text(re.compile("exited|stopped"), timeout=60_000)
    expect(page.locator("#action-stop")).to_be_disabled()
    expect(page.locator("#logs-status")).to_contain_text("ended")

    page.click("#action-start")
    expect(page.locator("#container-state")).to_have_text("running", timeout=60_000)
    assert ui_server.client().stacks.get_container(container["id"])["state"] == "running"
    # the followed log starts again and shows the line of both runs
    expect(page.locator("#logs-status")).to_have_text("live")
    expect(page.locator("#logs")).to_contain_text(re.compile(f"{READY_LINE}[\\s\\S]*{READY_LINE}"))


def test_a_foreign_origin_cannot_open_a_shell(ui_server: ServerProcess, container) -> None:
    url = ui_server.ws_url + f"/ui/ws/containers/{container['id']}/exec"
    status, close_code, data_frames = open_socket(url, "http://evil.example", ui_server, timeout=HANDSHAKE_TIMEOUT_S)
    assert status == 101  # accepted, then refused with its own close code (a browser sees the code, not a 403)
    assert close_code == 4403
    assert data_frames == []  # not a byte of a shell


def _standalone(server: ServerProcess, name: str) -> dict[str, Any] | None:
    return next((c for c in server.client().standalone.list("default") if c["name"] == name), None)


def test_a_standalone_container_is_run_stopped_started_and_removed_from_the_containers_page(
    page, ui_server: ServerProcess
) -> None:
    name = unique("uirun")
    page.goto("/ui/containers")
    page.fill("#run-form input[name=image]", "corral/busybox:latest")
    page.fill("#run-form input[name=name]", "Bad_Name")
    page.click("#run-form button[type=submit]")
    expect(page.locator("#run-error")).to_contain_text("name 'Bad_Name' is not a valid name")
    expect(page.locator("#run-form input[name=image]")).to_have_value("corral/busybox:latest")  # kept as typed

    page.fill("#run-form input[name=name]", name)
    page.fill("#run-form input[name=command]", "sleep 3600")
    page.click("#run-form button[type=submit]")
    row = page.locator(f"#standalone tr[data-name='{name}']")
    expect(row).to_have_count(1)

    def state_is(*states: str) -> bool:
        container = _standalone(ui_server, name)
        return container is not None and container["state"] in states

    wait_until(f"{name} running", lambda: state_is("running"), RUNNING_TIMEOUT_S)
    page.reload()
    expect(row.locator(".state")).to_have_text("running")
    row.locator("button", has_text="Stop").click()
    wait_until(f"{name} exited", lambda: state_is("exited", "stopped"), RUNNING_TIMEOUT_S)
    page.reload()
    expect(row.locator(".state")).to_contain_text(re.compile("exited|stopped"))
    row.locator("button", has_text="Start").click()
    wait_until(f"{name} running again", lambda: state_is("running"), RUNNING_TIMEOUT_S)

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Remove").click()
    expect(row).to_have_count(0)
    assert _standalone(ui_server, name) is None
