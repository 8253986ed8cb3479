"""Environments, hosts, the host page, "Add host" and the events log, in a real browser against the shared server
with its two local hosts `uih1` and `uih2`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import unique
from tests.integration.servers import ServerProcess

pytestmark = pytest.mark.integration


def _host(server: ServerProcess, name: str) -> dict:
    return next(h for h in server.client().list_hosts() if h["name"] == name)


def test_the_hosts_table_shows_both_active_hosts_with_their_facts(page: Page, ui_server: ServerProcess) -> None:
    page.goto("/ui/hosts")
    for name in ("uih1", "uih2"):
        row = page.locator(f"#hosts-rows tr[data-host={name}]")
        expect(row.locator("td").nth(1)).to_contain_text("active")
        host = _host(ui_server, name)
        expect(row.locator("td").nth(3)).to_have_text(host["address"])
        expect(row.locator("td").nth(4)).to_have_text(str(host["facts"]["cpus"]))
        assert host["agent_version"], "a connected agent reports its build"
        expect(row.locator("td").nth(9)).to_have_text(host["agent_version"][:12])
        expect(row.get_by_role("link", name=name)).to_have_attribute("href", f"/ui/hosts/{host['id']}")


def test_a_label_set_on_the_host_page_shows_on_the_live_hosts_list(page: Page, ui_server: ServerProcess) -> None:
    host = _host(ui_server, "uih2")
    key = unique("uitest")
    page.goto(f"/ui/hosts/{host['id']}")
    expect(page.locator("#host-facts")).to_contain_text(host["facts"]["engine_version"])
    page.fill("#label-form input[name=label]", "not a label")
    page.click("#label-form button[type=submit]")
    expect(page.locator("#label-error")).to_contain_text("KEY=VALUE")
    page.fill("#label-form input[name=label]", f"{key}=blue")
    page.click("#label-form button[type=submit]")
    expect(page.locator("#host-labels")).to_contain_text(f"{key}=blue")
    assert _host(ui_server, "uih2")["labels"][key] == "blue"
    try:
        hosts_page = page.context.new_page()
        hosts_page.goto("/ui/hosts")
        labels = hosts_page.locator("#hosts-rows tr[data-host=uih2] td.labels")
        expect(labels).to_contain_text(f"{key}=blue")
        expect(hosts_page.locator("#live-status")).to_have_class(re.compile(r"live-on"))
        # removing it on the host page: the hosts list follows without a reload
        page.get_by_role("button", name=f"Remove label {key}").click()
        expect(page.locator("#host-labels")).not_to_contain_text(key)
        expect(labels).not_to_contain_text(key)
        # and the host page follows a change made elsewhere
        expect(page.locator("#live-status")).to_have_class(re.compile(r"live-on"))
        ui_server.client().update_host_labels(host["id"], {**host["labels"], key: "green"})
        expect(page.locator("#host-labels")).to_contain_text(f"{key}=green")
    finally:
        labels_now = dict(_host(ui_server, "uih2")["labels"])
        if labels_now.pop(key, None) is not None:
            ui_server.client().update_host_labels(host["id"], labels_now)


def test_add_host_shows_the_registration_command(page: Page, ui_server: ServerProcess) -> None:
    page.goto("/ui/hosts")
    page.click("#create-token")
    command = page.locator("#registration-command-text")
    expect(command).to_contain_text(f"corral agent --url {ui_server.url} --token ")
    token = command.inner_text().split("--token ", 1)[1].strip()
    assert len(token) >= 16


def test_a_local_host_with_a_bad_label_is_refused_next_to_the_field(page: Page, ui_server: ServerProcess) -> None:
    name = unique("uibad")
    page.goto("/ui/hosts")
    page.fill("#local-host-form input[name=name]", name)
    page.fill("#local-host-form input[name=labels]", "zone")
    page.click("#local-host-form button[type=submit]")
    expect(page.locator("#labels-error")).to_contain_text("KEY=VALUE")
    expect(page.locator("#local-host-form input[name=name]")).to_have_value(name)
    assert name not in [h["name"] for h in ui_server.client().list_hosts()]


def test_a_local_host_made_from_the_form_goes_active_live_and_is_cordoned_and_removed(
    page: Page, ui_server: ServerProcess
) -> None:
    name = unique("uiloc")
    page.goto("/ui/hosts")
    page.fill("#local-host-form input[name=name]", name)
    page.fill("#local-host-form input[name=labels]", "zone=edge")
    page.click("#local-host-form button[type=submit]")
    row = page.locator(f"#hosts-rows tr[data-host={name}]")
    try:
        expect(row.locator("td.host-state")).to_contain_text("active", timeout=90_000)
        expect(row.locator("td.labels")).to_have_text("zone=edge")
        page.fill("#local-host-form input[name=name]", name)
        page.click("#local-host-form button[type=submit]")
        expect(page.locator("#name-error")).to_contain_text("already exists")

        row.get_by_role("button", name="Cordon").click()
        expect(row.locator("td.host-state")).to_contain_text("cordoned")
        assert _host(ui_server, name)["schedulable"] is False
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Remove").click()
        expect(row).to_have_count(0, timeout=60_000)
        assert name not in [h["name"] for h in ui_server.client().list_hosts()]
    finally:
        for host in ui_server.client().list_hosts():
            if host["name"] == name:
                ui_server.client().delete_host(host["id"])


def test_environments_are_created_from_the_form_and_a_duplicate_is_refused(
    page: Page, ui_server: ServerProcess
) -> None:
    name = unique("uienv")
    page.goto("/ui/environments")
    page.fill("#environment-form input[name=name]", name)
    page.fill("#environment-form input[name=subnet]", "198.19.64.0/20")
    page.click("#environment-form button[type=submit]")
    row = page.locator(f"#environments tr[data-environment={name}]")
    expect(row).to_contain_text("198.19.64.0/20")
    created = ui_server.client().get_environment(name)
    assert created["orchestration"] == "cattle"

    page.fill("#environment-form input[name=name]", name)
    page.click("#environment-form button[type=submit]")
    expect(page.locator("#name-error")).to_contain_text("already exists")
    expect(page.locator("#environment-form input[name=name]")).to_have_value(name)

    page.fill("#environment-form input[name=name]", unique("uienv"))
    page.fill("#environment-form input[name=subnet]", "not-a-cidr")
    page.click("#environment-form button[type=submit]")
    expect(page.locator("#subnet-error")).to_be_visible()

    # switching to it and back, then deleting it (with confirmation)
    row.get_by_role("link", name="Switch to").click()
    expect(page.locator("#env-select option:checked")).to_contain_text(name)
    expect(page.locator("#hosts-rows")).to_contain_text("No hosts")
    # a host page belongs to the host's environment; choosing another one in the switcher leads to its hosts
    page.goto(f"/ui/hosts/{_host(ui_server, 'uih1')['id']}")
    expect(page.locator("#env-select option:checked")).to_contain_text("default")
    page.select_option("#env-select", label=f"{name} (cattle)")
    page.wait_for_url("**/ui/hosts")
    expect(page.locator("#hosts-rows")).to_contain_text("No hosts")
    page.goto("/ui/environments")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#environments tr[data-environment={name}]").get_by_role("button", name="Delete").click()
    expect(page.locator(f"#environments tr[data-environment={name}]")).to_have_count(0)
    assert name not in [e["name"] for e in ui_server.client().list_environments()]


def test_the_events_log_shows_a_change_as_it_happens(page: Page, ui_server: ServerProcess) -> None:
    host = _host(ui_server, "uih1")
    page.goto("/ui/events")
    expect(page.locator("#live-status")).to_have_class(re.compile(r"live-on"))
    key = unique("uievent")
    ui_server.client().update_host_labels(host["id"], {**host["labels"], key: "x"})
    try:
        rows = page.locator("#event-rows tr[data-resource-type=host]")
        row = rows.filter(has=page.locator(f'td[title*="{key}"]')).first
        expect(row).to_contain_text("updated")
        expect(row).to_contain_text("uih1")
        page.fill("#event-filter", "stack")
        expect(row).to_be_hidden()
        page.fill("#event-filter", "hos")
        expect(row).to_be_visible()
    finally:
        ui_server.client().update_host_labels(host["id"], host["labels"])


def test_the_events_log_starts_with_history(page: Page, ui_server: ServerProcess) -> None:
    host = _host(ui_server, "uih1")
    key = unique("uihistory")
    ui_server.client().update_host_labels(host["id"], {**host["labels"], key: "x"})
    try:
        page.goto("/ui/events")  # opened after the change: the row comes from the server's kept history
        row = page.locator("#event-rows tr.history[data-resource-type=host]").filter(
            has=page.locator(f'td[title*="{key}"]')
        )
        expect(row.first).to_contain_text("updated")
        expect(row.first).to_contain_text("uih1")
    finally:
        ui_server.client().update_host_labels(host["id"], host["labels"])
