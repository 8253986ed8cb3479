"""The stack pages' pure parts: import errors land on the right field, an import that should not start creates its
services with `start_on_create: false` (checked by the real compose loader), and container reasons and actions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.compose import ComposeFile, load_stack
from corral.model.errors import Conflict, InvalidInput
from corral.web.stacks_view import (
    container_reason,
    import_field_of,
    stack_actions,
    stack_summary,
    without_start,
)

service_names = st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=4, unique=True)


def compose_of(names: list[str], v2: bool) -> str:
    if v2:
        return "version: '2'\nservices:\n" + "".join(f"  {n}:\n    image: corral/busybox\n" for n in names)
    return "".join(f"{n}:\n  image: corral/busybox\n" for n in names)


@given(names=service_names, v2=st.booleans(), rancher_kind=st.sampled_from(["none", "blank", "v1", "v2"]))
def test_without_start_stops_every_service_and_keeps_the_other_settings(
    names: list[str], v2: bool, rancher_kind: str
) -> None:
    compose = compose_of(names, v2)
    first = names[0]
    rancher = {
        "none": None,
        "blank": "  \n",
        "v1": f"{first}:\n  scale: 3\n",
        "v2": f"version: '2'\nservices:\n  {first}:\n    scale: 3\n",
    }[rancher_kind]
    changed = without_start(compose, rancher)
    assert changed is not None
    spec = load_stack("s", ComposeFile("docker-compose.yml", compose), ComposeFile("rancher-compose.yml", changed))
    assert {s.name for s in spec.services} == set(names)
    assert all(not s.start_on_create for s in spec.services)
    if rancher_kind in ("v1", "v2"):
        assert next(s for s in spec.services if s.name == first).scale == 3


def test_without_start_leaves_unreadable_files_to_the_api() -> None:
    assert without_start("services: [unclosed", None) is None
    assert without_start("services: [unclosed", "x: 1\n") == "x: 1\n"
    assert without_start("services:\n  web:\n    image: a\n", "web: [") == "web: ["
    assert without_start("services:\n  web:\n    image: a\n", "- a list\n") == "- a list\n"


@pytest.mark.parametrize(
    ("error", "field"),
    [
        (
            InvalidInput(
                "docker-compose.yml: service web: imagee: unknown key", field="docker-compose.yml:services.web"
            ),
            "compose",
        ),
        (InvalidInput("docker-compose.yml: invalid YAML", field="docker-compose.yml"), "compose"),
        (
            InvalidInput("rancher-compose.yml: services: db: not defined", field="rancher-compose.yml:services.db"),
            "rancher_compose",
        ),
        (InvalidInput("answers: line 2: expected KEY=VALUE", field="answers:2"), "answers"),
        (InvalidInput("name 'X' is not a valid name", field="name"), "name"),
        (Conflict("a stack named 'web' already exists", field="name"), "name"),
        (InvalidInput("compose: too long", field="compose"), "compose"),
        (InvalidInput("docker-compose.yml: something", field=None), "compose"),
        (InvalidInput("environment 'x' not found", field="environment"), ""),
        (InvalidInput("docker-compose.yml.bak: odd", field="docker-compose.yml.bak"), ""),
    ],
)
def test_import_errors_belong_to_the_field_they_name(error: InvalidInput, field: str) -> None:
    assert import_field_of(error) == field


def test_container_reason_says_why_a_container_is_not_simply_running() -> None:
    assert container_reason({"state": "running", "health": "", "reason": "", "status": "Up 5 s"}) == ""
    exited = {"state": "exited", "exit_code": 3, "reason": "restarting in 4 s", "health": ""}
    assert container_reason(exited) == "exit code 3; restarting in 4 s"
    unhealthy = {"state": "running", "health": "unhealthy", "health_reason": "GET / returned 500"}
    assert container_reason(unhealthy) == "GET / returned 500"
    assert container_reason({"state": "pending", "status": "", "reason": "no host has port 80 free"}) == (
        "no host has port 80 free"
    )
    assert "rollback" in container_reason({"state": "stopped", "retired": True})


def test_stack_actions_follow_the_upgrade_rules_of_the_api() -> None:
    def stack(*states: str) -> dict[str, object]:
        return {"services": [{"state": s} for s in states]}

    assert stack_actions(stack("active", "active")) == {"confirm": False, "rollback": False}
    assert stack_actions(stack("upgraded", "active")) == {"confirm": True, "rollback": True}
    assert stack_actions(stack("upgraded", "upgrading")) == {"confirm": False, "rollback": True}
    assert stack_actions(stack("upgrade-error")) == {"confirm": False, "rollback": True}


def test_stack_summary_counts_containers_and_names_the_catalog_origin() -> None:
    stack = {
        "id": "stack-1",
        "name": "shop",
        "state": "error",
        "created_at": 1.0,
        "services": [
            {"name": "web", "running": 2, "scale": 3, "reason": "web-3 not running after 120 s"},
            {"name": "db", "running": 1, "scale": 1, "reason": ""},
        ],
        "catalog": {"catalog": "library", "template": "shop", "version": "1", "version_name": "1.2", "upgrades": ["2"]},
    }
    summary = stack_summary(stack)
    assert (summary["services"], summary["running"], summary["desired"]) == (2, 3, 4)
    assert summary["reason"] == "web: web-3 not running after 120 s"
    assert summary["catalog"] == "library/shop 1.2"
    assert summary["upgrades"] == ["2"]
    assert stack_summary({**stack, "catalog": {}})["catalog"] == ""


def test_without_start_writes_numbers_back_as_they_were_written() -> None:
    changed = without_start("web:\n  image: a\n", "web:\n  scale: 2\n  metadata:\n    code: 007\n    ratio: 1.10\n")
    assert changed is not None
    assert "code: 007" in changed and "ratio: 1.10" in changed and "scale: 2" in changed
    assert "start_on_create: false" in changed
