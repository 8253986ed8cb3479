"""Pure parts of the stack actions, compose view, host usage and role checks of the UI (issue 18)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st

from corral.model.access import Resource, Role
from corral.web import app as web_app
from corral.web.permissions import may_change, role_here
from corral.web.rendering import templates
from corral.web.sessions import Session
from corral.web.shared import require_post_session
from corral.web.stacks_view import compose_files, power_actions, stack_progress
from corral.web.usage_view import usage_summary

STATES = ("running", "stopping", "starting", "exited", "stopped", "created", "pending", "removing")


def container(state: str, desired: str = "running", retired: bool = False) -> dict[str, Any]:
    return {"state": state, "desired": desired, "retired": retired}


def test_power_actions_offer_stop_while_anything_should_run_and_start_while_anything_is_stopped() -> None:
    assert power_actions([container("running")]) == {"stop": True, "start": False}
    assert power_actions([container("exited", "stopped")]) == {"stop": False, "start": True}
    mixed = [container("running"), container("exited", "stopped")]
    assert power_actions(mixed) == {"stop": True, "start": True}
    assert power_actions([container("running", retired=True)]) == {"stop": False, "start": False}


def test_progress_counts_the_containers_that_reached_the_asked_state() -> None:
    stopping = [container("stopping", "stopped"), container("exited", "stopped"), container("running")]
    assert stack_progress(stopping) == [{"verb": "Stopping", "done": 1, "total": 2}]
    starting = [container("starting"), container("running"), container("running")]
    assert stack_progress(starting) == [{"verb": "Starting", "done": 2, "total": 3}]
    assert stack_progress([container("running"), container("exited", "stopped")]) == []  # at rest: no progress


@given(st.lists(st.tuples(st.sampled_from(STATES), st.sampled_from(("running", "stopped")), st.booleans())))
def test_progress_never_counts_more_done_than_asked(rows: list[tuple[str, str, bool]]) -> None:
    containers = [container(state, desired, retired) for state, desired, retired in rows]
    for step in stack_progress(containers):
        assert 0 <= step["done"] < step["total"]  # something is still in transition while a step is shown


def test_compose_files_tells_the_compose_file_from_the_rancher_compose_file_by_name() -> None:
    exported = {
        "files": {"rancher-compose.yml": "services: {}\n", "compose.yaml": "services:\n  web: {image: x}\n"},
        "answers": {"B": "2", "A": "1"},
    }
    fields = compose_files(exported)
    assert fields["compose_name"] == "compose.yaml" and "web" in fields["compose"]
    assert fields["rancher_compose_name"] == "rancher-compose.yml" and fields["rancher_compose"] == "services: {}\n"
    assert fields["answers"] == "A=1\nB=2\n"
    empty = compose_files({"files": {}})
    assert empty["compose_name"] == "docker-compose.yml" and empty["compose"] == "" and empty["answers"] == ""


def test_usage_sums_container_samples_against_the_machine() -> None:
    samples = [{"cpu_percent": 150.0, "memory_usage": 1024**3}, {"cpu_percent": 50.0, "memory_usage": 1024**3}]
    usage = usage_summary({"cpus": 4, "memory_bytes": 8 * 1024**3}, samples, asked=3)
    assert usage["cpu_percent"] == 50.0 and usage["cpu_cores"] == 2.0
    assert usage["memory_used"] == 2 * 1024**3 and usage["memory_percent"] == 25.0
    assert usage["containers"] == 2 and usage["missing"] == 1
    unknown = usage_summary({}, [], asked=0)
    assert unknown["cpu_percent"] is None and unknown["memory_percent"] is None and unknown["memory_used"] == 0


def session_in(environment: str) -> Session:
    return Session(
        token="t",
        access_key="a",
        secret_key="s",
        csrf_token="c",
        api_url="http://127.0.0.1:1",
        environment_id=environment,
    )


def test_role_here_reads_the_callers_role_in_the_session_environment() -> None:
    me = {"admin": False, "environments": [{"id": "e1", "role": "read-only"}, {"id": "e2", "role": "member"}]}
    assert role_here(session_in("e1"), me) is Role.READ_ONLY
    assert role_here(session_in("e2"), me) is Role.MEMBER
    assert role_here(session_in("e3"), me) is None
    assert role_here(session_in("e3"), {"admin": True, "environments": []}) is Role.OWNER
    assert not may_change(session_in("e1"), Resource.REGISTRIES, me)
    assert may_change(session_in("e2"), Resource.REGISTRIES, me)
    assert not may_change(session_in("e2"), Resource.ENVIRONMENT, me)


def _dependencies(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependencies(sub)


def test_every_form_post_of_the_ui_needs_the_session_csrf_token() -> None:
    routers = [web_app.router] + [getattr(web_app, name).router for name in dir(web_app) if name.startswith("pages_")]
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    posts = [r for r in routes if "POST" in r.methods and r.path != "/login"]
    assert {"/registries", "/keys/environment", "/stacks/{stack_id}/stop", "/catalog/sources"} <= {
        r.path for r in posts
    }
    for route in posts:
        assert require_post_session in set(_dependencies(route.dependant)), route.path


def _render(name: str, **context: Any) -> str:
    base = {"csrf_token": "tok", "environments": [], "environment": None, "session": None, "path": "/ui/x"}
    return templates.get_template(name).render(**base, **context)


def test_the_registries_page_escapes_and_never_fills_a_password() -> None:
    registry = {"id": "r1", "server": "<b>reg</b>", "username": '"><script>', "created_at": 1.0}
    html = _render(
        "registries.html", registries=[registry], can_change=True, error="", form={"server": "", "username": ""}
    )
    assert "<b>reg" not in html and "<script>" not in html and "&lt;b&gt;reg&lt;/b&gt;" in html
    assert re.findall(r'<input[^>]*type="password"[^>]*>', html) and not re.findall(
        r'<input[^>]*type="password"[^>]*value=', html
    )
    read_only = _render("registries.html", registries=[registry], can_change=False, error="", form={})
    assert "registry-form" not in read_only and "/delete" not in read_only and "read-only-note" in read_only


def test_the_compose_view_shows_the_files_escaped() -> None:
    stack = {"id": "s1", "name": "web", "catalog": None}
    files = [("docker-compose.yml", "services:\n  web:\n    command: echo '<b>'\n")]
    html = _render(
        "stack_compose.html",
        stack=stack,
        files=files,
        answers=[("A", "<i>")],
        profiles=[],
        warnings=[],
        can_change=False,
    )
    assert "echo &#39;&lt;b&gt;&#39;" in html and "A=&lt;i&gt;" in html and "upgrade-link" not in html
