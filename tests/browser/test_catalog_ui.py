"""The catalog in a real browser: template cards with icons and a filter, a launch form generated from the
questions, a preview of the rendered files, launching (containers turn running on the stack page without a
reload), errors next to the question they concern, and upgrade offers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

import corral.catalog
from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration

TEMPLATE_PAGE = "/ui/catalog/library/hello-web"


@pytest.fixture(scope="module")
def made_stacks(ui_server: ServerProcess) -> Iterator[list[str]]:
    """Names of the stacks this module creates; removed at the end."""
    names: list[str] = []
    yield names
    client = ui_server.client()
    for stack in client.stacks.list_all("default"):
        if stack["name"] in names:
            client.stacks.delete(stack["id"])


def stack_names(ui_server: ServerProcess) -> set[str]:
    return {s["name"] for s in ui_server.client().stacks.list_all("default")}


def test_catalog_shows_templates_with_icons_and_filters_them(page) -> None:
    page.goto("/ui/catalog")
    cards = page.locator(".template-card")
    expect(cards.filter(has_text="Hello Web")).to_have_count(1)
    shipped = [d for d in (Path(corral.catalog.__file__).parent / "default" / "templates").iterdir() if d.is_dir()]
    expect(cards).to_have_count(len(shipped))  # every template of the shipped library
    icon = cards.filter(has_text="Hello Web").locator("img")
    expect(icon).to_be_visible()
    # visible is not loaded: under load the image arrives later; it must load (a broken icon never does)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=icon.element_handle(), timeout=15_000)
    page.fill("[data-catalog-filter]", "logs a line")
    expect(page.locator(".template-card:visible")).to_have_count(1)
    expect(page.locator(".template-card:visible")).to_contain_text("Sleeper")
    page.fill("[data-catalog-filter]", "no such template")
    expect(page.locator("#no-templates")).to_be_visible()
    expect(page.locator("#catalog-sources tr[data-source=library]")).to_contain_text("ok")


def test_launch_form_previews_then_launches_and_containers_turn_running_live(
    page, ui_server: ServerProcess, made_stacks: list[str]
) -> None:
    name = unique("cat")
    made_stacks.append(name)
    page.goto(TEMPLATE_PAGE)
    expect(page.locator("#readme h3")).to_contain_text("Hello Web 0.2.0")
    message = page.locator("[data-variable=MESSAGE]")
    scale = page.locator("[data-variable=SCALE]")
    expect(message.locator(".required")).to_have_count(1)
    expect(message.locator("input")).to_have_value("Hello from Corral")
    expect(scale.locator("input[type=number]")).to_have_attribute("max", "10")
    expect(scale).to_contain_text("How many web containers to run.")

    page.fill("#launch-stack", name)
    message.locator("input").fill("greetings <b>from</b> the UI test")
    scale.locator("input").fill("2")
    page.click("#preview-button")
    preview = page.locator("#preview")
    expect(preview.locator(".preview-services")).to_contain_text("MESSAGE=greetings <b>from</b> the UI test")
    expect(preview.locator("pre[data-file='docker-compose.yml']")).to_contain_text("image: corral/busybox:latest")
    expect(preview.locator(".preview-services tbody tr")).to_contain_text(["web"])
    expect(preview.locator(".preview-services tbody td").nth(2)).to_have_text("2")
    rancher = preview.locator("pre[data-file='rancher-compose.yml']")
    expect(rancher).to_contain_text("scale: ${SCALE}")
    expect(rancher).not_to_contain_text("questions")  # the catalog section is not part of the stack
    expect(page.locator("#launch-stack")).to_have_value(name)  # the form keeps what was typed
    assert name not in stack_names(ui_server)  # a preview installs nothing

    page.click("#launch-button")
    page.wait_for_url("**/ui/stacks/*")
    page.evaluate("window.corralNotReloaded = true")  # gone if the stack page reloads
    running = page.locator("#containers tr[data-state=running]")
    expect(running).to_have_count(2, timeout=90_000)
    assert page.evaluate("window.corralNotReloaded === true")  # it turned running without a reload
    stack = next(s for s in ui_server.client().stacks.list_all("default") if s["name"] == name)
    assert stack["catalog"]["answers"]["MESSAGE"] == "greetings <b>from</b> the UI test"


def test_an_out_of_range_answer_is_shown_next_to_its_question_and_creates_nothing(
    page, ui_server: ServerProcess
) -> None:
    name = unique("bad")
    page.goto(TEMPLATE_PAGE)
    page.fill("#launch-stack", name)
    page.locator("[data-variable=SCALE] input").fill("11")
    page.click("#launch-button")
    error = page.locator("[data-variable=SCALE] .field-error")
    expect(error).to_contain_text("maximum 10")
    expect(page.locator("[data-variable=MESSAGE] .field-error")).to_have_count(0)
    assert "/ui/catalog/library/hello-web" in page.url
    expect(page.locator("[data-variable=SCALE] input")).to_have_value("11")
    assert name not in stack_names(ui_server)
    page.fill("#launch-stack", "Not A Name!")
    page.locator("[data-variable=SCALE] input").fill("1")
    page.click("#preview-button")
    expect(page.locator("[data-variable=stack] .field-error")).to_be_visible()
    expect(page.locator("[data-variable=SCALE] .field-error")).to_have_count(0)


def test_an_older_stack_is_offered_the_newer_version_and_upgrades(
    page, ui_server: ServerProcess, made_stacks: list[str]
) -> None:
    name = unique("old")
    made_stacks.append(name)
    client = ui_server.client()
    client.catalog.install("default", "library", "hello-web", name, version="0", answers={"SCALE": "1"})
    page.goto(TEMPLATE_PAGE)
    row = page.locator(f"#upgrades tr[data-stack={name}]")
    expect(row).to_contain_text("0.1.0")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Upgrade to 0.2.0").click()
    page.wait_for_url("**/ui/stacks/*")
    stack = next(s for s in client.stacks.list_all("default") if s["name"] == name)
    assert stack["catalog"]["version_name"] == "0.2.0"
    assert stack["catalog"]["upgrades"] == []


def test_a_cleared_checkbox_answers_false_and_the_preview_follows_the_template(page) -> None:
    page.goto("/ui/catalog/library/fanout")
    page.locator("[data-variable=WORKERS] input").fill("3")
    checkbox = page.locator("[data-variable=WITH_WEB] input[type=checkbox]")
    expect(checkbox).to_be_checked()  # the question's default
    checkbox.uncheck()
    page.click("#preview-button")
    services = page.locator("#preview .preview-services tbody tr td:first-child")
    expect(services).to_have_text(["worker-0", "worker-1", "worker-2"])
    expect(page.locator("[data-variable=WITH_WEB] input[type=checkbox]")).not_to_be_checked()
