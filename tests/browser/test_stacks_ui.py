"""Stacks in a real browser: import a stack by pasting compose files, watch its containers run, scale a service with
the + button, and see a bad compose file refused next to its field with nothing created."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

SLEEPER = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: ["sleep", "3600"]
"""
CONTAINER_TIMEOUT_MS = 90_000


def _stack_names(server: ServerProcess) -> set[str]:
    return {s["name"] for s in server.client().stacks.list_all("default")}


def _remove_stacks(server: ServerProcess, names: set[str]) -> None:
    for stack in server.client().stacks.list_all("default"):
        if stack["name"] in names:
            server.client().stacks.delete(stack["id"])


def _mark_page(page: Any) -> None:
    """A marker that a reload would wipe out: the page must still carry it after the live updates."""
    page.evaluate("window.__corralNoReload = true")


def _not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.__corralNoReload === true"))


@pytest.fixture(scope="module")
def scalable(ui_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """A stack with one running container, made through the API, for the scale test."""
    name = unique("uiscale")
    stack = ui_server.client().stacks.up("default", name, SLEEPER)
    try:
        yield stack
    finally:
        _remove_stacks(ui_server, {name})


def test_an_imported_stack_shows_its_containers_running_without_a_reload(page, ui_server: ServerProcess) -> None:
    name = unique("uiimport")
    try:
        page.goto("/ui/stacks")
        page.get_by_role("link", name="Import stack").click()
        page.fill("input[name=name]", name)
        page.fill("textarea[name=compose]", SLEEPER)
        page.fill("textarea[name=rancher_compose]", "version: '2'\nservices:\n  web:\n    scale: 2\n")
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile(r"/ui/stacks/[^/?]+\?imported=1$"))
        _mark_page(page)
        expect(page.locator("#imported")).to_contain_text(name)
        running = page.locator("#containers tr[data-state=running]")
        expect(running).to_have_count(2, timeout=CONTAINER_TIMEOUT_MS)
        expect(page.locator("#stack-state")).to_have_text("active", timeout=CONTAINER_TIMEOUT_MS)
        first = running.first
        expect(first.locator("a[href^='/ui/containers/']")).to_have_text(re.compile(rf"^{name}-web-\d+$"))
        expect(first.locator("a[href^='/ui/hosts/']")).to_have_text(re.compile(r"^uih[12]$"))
        assert _not_reloaded(page)

        # the stacks list shows it, and deleting it there (after the confirm) removes it through the API
        page.goto("/ui/stacks")
        row = page.locator(f"tr[data-stack='{name}']")
        expect(row).to_contain_text("2/2")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Delete").click()
        expect(row).to_have_count(0)
        assert name not in _stack_names(ui_server)
    finally:
        _remove_stacks(ui_server, {name})


def test_an_import_without_start_creates_its_containers_stopped(page, ui_server: ServerProcess) -> None:
    name = unique("uistopped")
    try:
        page.goto("/ui/stacks/new")
        page.fill("input[name=name]", name)
        page.fill("textarea[name=compose]", SLEEPER)
        page.uncheck("input[name=start]")
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile(r"/ui/stacks/[^/?]+\?imported=1$"))
        expect(page.locator("#containers tr[data-container]")).to_have_count(1, timeout=CONTAINER_TIMEOUT_MS)
        containers = ui_server.client().stacks.containers("default", name)
        assert [c["desired"] for c in containers] == ["stopped"]
        expect(page.locator("#containers tr[data-state=running]")).to_have_count(0)
        # stopped on purpose is at rest, not "activating" forever
        stack = ui_server.client().stacks.find("default", name)
        wait_until(
            "the stack to be inactive", lambda: ui_server.client().stacks.get(stack["id"])["state"] == "inactive", 30
        )
    finally:
        _remove_stacks(ui_server, {name})


def test_scaling_up_from_the_service_page_shows_the_new_container_without_a_reload(
    page, ui_server: ServerProcess, scalable: dict[str, Any]
) -> None:
    service = scalable["services"][0]
    page.goto(f"/ui/services/{service['id']}")
    _mark_page(page)
    rows = page.locator("#containers tr[data-state=running]")
    expect(rows).to_have_count(1, timeout=CONTAINER_TIMEOUT_MS)
    page.get_by_role("button", name="scale up by one").click()
    expect(page.locator("#scale-input")).to_have_value("2")
    expect(rows).to_have_count(2, timeout=CONTAINER_TIMEOUT_MS)
    expect(page.locator("#service-scale")).to_contain_text("2/2 running")
    assert ui_server.client().stacks.get_service(service["id"])["scale"] == 2
    assert _not_reloaded(page)

    # a scale the API refuses is shown next to the input, and nothing changes
    page.fill("#scale-input", "5000")
    page.get_by_role("button", name="Set").click()
    expect(page.locator("#scale-error")).to_contain_text("between 0 and 1000")
    assert ui_server.client().stacks.get_service(service["id"])["scale"] == 2

    # switching to another environment on this page leads to that environment's stacks, not this service
    other = ui_server.client().create_environment(unique("uienv"))
    try:
        page.goto(f"/ui/services/{service['id']}?env={other['id']}")
        expect(page).to_have_url(re.compile(r"/ui/stacks$"))
        expect(page.locator("#env-select")).to_have_value(other["id"])
    finally:
        ui_server.client().delete_environment(other["id"])


@pytest.mark.parametrize(
    ("field", "compose", "rancher_compose", "message"),
    [
        ("compose", "services:\n  web:\n    image: corral/busybox\n    imagee: x\n", "", "imagee"),
        ("compose", "services:\n  web: [unclosed\n", "", "docker-compose.yml"),
        ("rancher_compose", SLEEPER, "services:\n  web:\n    scale: many\n", "rancher-compose.yml"),
        ("name", SLEEPER, "", "not a valid name"),
    ],
)
def test_an_invalid_stack_is_refused_next_to_its_field_and_nothing_is_created(
    page, ui_server: ServerProcess, field: str, compose: str, rancher_compose: str, message: str
) -> None:
    name = unique("uibad") if field != "name" else "Bad_Name"
    before = _stack_names(ui_server)
    page.goto("/ui/stacks/new")
    page.fill("input[name=name]", name)
    page.fill("textarea[name=compose]", compose)
    page.fill("textarea[name=rancher_compose]", rancher_compose)
    page.get_by_role("button", name="Import").click()
    error = page.locator(f"#{field}-error")
    expect(error).to_contain_text(message)
    # the error sits in the field's own label, and what was pasted is kept for fixing
    label = page.locator("label", has=page.locator(f"[name={field}]"))
    expect(label.locator(".field-error")).to_have_count(1)
    expect(page.locator(f"[name={field}]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("textarea[name=compose]")).to_have_value(compose)
    assert page.locator(".field-error").count() == 1
    assert _stack_names(ui_server) == before


def test_a_service_restarts_and_finishes_its_upgrade_from_its_page(page, ui_server: ServerProcess) -> None:
    name = unique("uiupgrade")
    client = ui_server.client()
    try:
        stack = client.stacks.up("default", name, SLEEPER)
        service = stack["services"][0]
        page.goto(f"/ui/services/{service['id']}")
        _mark_page(page)
        expect(page.locator("#containers tr[data-state=running]")).to_have_count(1, timeout=CONTAINER_TIMEOUT_MS)

        # restart asks first: dismissed, nothing is sent; accepted, the server confirms the restart
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.locator("#restart-form").get_by_role("button", name="Restart").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.fill("input[name=batch_size]", "1")
        page.locator("#restart-form").get_by_role("button", name="Restart").click()
        expect(page.locator("#restart-result")).to_have_text("restarting, 1 at a time")
        # the restart is stored with the service, which refuses other changes until it is done
        wait_until(
            "the rolling restart done",
            lambda: client.stacks.get_service(service["id"])["state"] == "active",
            CONTAINER_TIMEOUT_MS / 1000,
        )

        # an upgrade started elsewhere (corral up --upgrade) shows up live, and is finished from here
        client.stacks.up("default", name, SLEEPER.replace('"3600"', '"3601"'), upgrade={"batch_size": 1})
        expect(page.locator("#service-state")).to_have_text("upgraded", timeout=CONTAINER_TIMEOUT_MS)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Finish upgrade").click()
        expect(page.locator("#service-state")).to_have_text("active", timeout=CONTAINER_TIMEOUT_MS)
        expect(page.locator("#upgrade")).to_have_count(0)
        assert client.stacks.get_service(service["id"])["upgrade"] is None
    finally:
        _remove_stacks(ui_server, {name})


def test_preview_shows_what_import_and_upgrade_would_do_and_does_nothing(
    page, ui_server: ServerProcess, scalable: dict[str, Any]
) -> None:
    name = unique("uiplan")
    config_hash = ui_server.client().stacks.get(scalable["id"])["services"][0]["config_hash"]
    page.goto("/ui/stacks/new")
    page.fill("input[name=name]", name)
    page.fill("textarea[name=compose]", SLEEPER)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#plan-preview")
    expect(preview).to_contain_text(f"create stack {name}")
    expect(page.locator("#plan-services li[data-service=web]")).to_have_attribute("data-action", "create")
    created = page.locator("#plan-containers tr.plan-create")
    expect(created).to_have_count(1)
    expect(created.first).to_contain_text(f"{name}-web-1")
    expect(created.first.locator("td").nth(2)).to_have_text(re.compile(r"^uih[12]$"))
    expect(page.locator("textarea[name=compose]")).to_have_value(SLEEPER)  # the form is kept for Import
    assert name not in _stack_names(ui_server)  # nothing created

    # the upgrade form: the stack's files as applied; a changed command previews a recreate in place
    page.goto(f"/ui/stacks/{scalable['id']}")
    page.locator("#stack-upgrade-link").click()
    compose = page.locator("textarea[name=compose]")
    expect(compose).to_have_value(SLEEPER)
    compose.fill(SLEEPER.replace('"3600"', '"3601"'))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#plan-preview")).to_contain_text(f"update stack {scalable['name']}")
    web = page.locator("#plan-services li[data-service=web]")
    expect(web).to_have_attribute("data-action", "change")
    expect(web.locator("table.plan-changes")).to_contain_text("launch.command")
    expect(page.locator("#plan-containers tr.plan-recreate").first).to_contain_text(f"{scalable['name']}-web-")
    assert ui_server.client().stacks.get(scalable["id"])["services"][0]["config_hash"] == config_hash  # unchanged


def _build_context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(dockerfile)
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  app:\n    build: ./app\n")
    return compose


def test_the_stack_page_shows_a_finished_build_and_its_log(page, ui_server: ServerProcess, tmp_path: Path) -> None:
    name = unique("uibuild")
    compose = _build_context(tmp_path, 'FROM corral/busybox\nRUN echo built-for-the-ui\nCMD ["sleep", "3600"]\n')
    try:
        ui_server.cli("up", "-f", str(compose), "-s", name, "--timeout", "180")
        stack_id = ui_server.client().stacks.find("default", name)["id"]
        page.goto(f"/ui/stacks/{stack_id}")
        row = page.locator("#stack-builds tr.build-row")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("app")
        expect(row.locator("[data-state]")).to_have_text("built")
        log = page.locator("#stack-builds details.build-log")
        log.locator("summary").click()
        expect(log.locator("pre")).to_contain_text("Step 2/3 : RUN echo built-for-the-ui")
        expect(log.locator(".stream-status")).to_have_text("end of log")

        # A read that fails (here: the browser offline; in CI, Chromium dropping the request because a test host's
        # bridge changed the machine's network) is shown with its reason, and read again without another click.
        page.reload()
        page.context.set_offline(True)
        try:
            log.locator("summary").click()
            expect(log.locator(".stream-status")).to_contain_text("cannot read the log")
            expect(log.locator(".stream-status")).to_contain_text("trying again")
            expect(log.locator("pre")).to_have_text("")
        finally:
            page.context.set_offline(False)
        expect(log.locator("pre")).to_contain_text("Step 2/3 : RUN echo built-for-the-ui", timeout=20_000)
        expect(log.locator(".stream-status")).to_have_text("end of log")

        # The same dropped request earlier: the page's script itself fails to load (a network failure, not a made-up
        # answer). The page asks for it again and the log still shows, though the click came before the script ran.
        dropped: list[str] = []

        def drop_the_first(route: Any) -> None:
            if dropped:
                route.continue_()
            else:
                dropped.append(route.request.url)
                route.abort("internetdisconnected")

        page.route("**/ui/static/builds.js", drop_the_first)
        page.reload()
        log.locator("summary").click()
        expect(log.locator("pre")).to_contain_text("Step 2/3 : RUN echo built-for-the-ui", timeout=20_000)
        expect(log.locator(".stream-status")).to_have_text("end of log")
        assert len(dropped) == 1
        page.unroute("**/ui/static/builds.js")
    finally:
        _remove_stacks(ui_server, {name})


def test_a_build_log_opened_while_it_runs_follows_it_and_the_row_turns_built(
    page, ui_server: ServerProcess, tmp_path: Path
) -> None:
    name = unique("uibuildrun")
    compose = _build_context(
        tmp_path,
        "FROM corral/busybox\nRUN echo slow-step-begins && sleep 10\nRUN echo after-the-slow-step\n"
        'CMD ["sleep", "3600"]\n',
    )
    # `corral up` follows the build to its end: run it aside and open the page while the build runs
    up = subprocess.Popen(
        [sys.executable, "-m", "corral", "up", "-d", "-f", str(compose), "-s", name],
        env=ui_server.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stack = wait_until("the stack", lambda: ui_server.client().stacks.find("default", name), timeout=60)
        wait_until("its build", lambda: ui_server.client().stacks.builds(stack["id"]), timeout=60)
        page.goto(f"/ui/stacks/{stack['id']}")
        row = page.locator("#stack-builds tr.build-row")
        expect(row).to_have_count(1)
        state = row.locator("[data-state]")
        assert state.get_attribute("data-state") in ("queued", "waiting", "building")  # the page came before its end
        log = page.locator("#stack-builds details.build-log")
        expect(log).to_have_attribute("open", "")  # a running build's log is open and followed
        log.evaluate("details => { details.dataset.marker = 'kept'; }")  # a re-rendered table would lose it
        expect(log.locator("pre")).to_contain_text("Step 2/4 : RUN echo slow-step-begins", timeout=60_000)
        expect(log.locator("pre")).to_contain_text("Step 3/4 : RUN echo after-the-slow-step", timeout=120_000)
        expect(log.locator(".stream-status")).to_have_text("end of log")
        expect(state).to_have_text("built")  # the rows follow the build; the open log stays as it was
        expect(log).to_have_attribute("data-marker", "kept")
        expect(log).to_have_attribute("open", "")
        expect(log.locator("pre")).to_contain_text("Step 2/4 : RUN echo slow-step-begins")
        output, _ = up.communicate(timeout=120)
        assert up.returncode == 0, output
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        _remove_stacks(ui_server, {name})
