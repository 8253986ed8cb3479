"""UI pages: the stacks of the current environment, one stack with its services and containers, one service (scale,
restart, finish or roll back an upgrade), and importing a stack from pasted compose files.

Why these shapes: every page is a thin view of the `/v1` API (the same calls `corral up`, `ps`, `scale`, `restart`
make); the parts that change while an operator watches (states, containers) are fragments that the page re-fetches
whenever the event stream says something changed, so no page needs a reload.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.compose.envfile import parse_answers
from corral.model.access import Resource
from corral.model.errors import CorralError, InvalidInput
from corral.web.permissions import may_change
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession
from corral.web.stacks_view import (
    ANSWERS_NAME,
    container_rows,
    import_field_of,
    power_actions,
    service_actions,
    stack_actions,
    stack_progress,
    stack_summary,
    without_start,
)
from corral.web.streams import relay_stream

router = APIRouter()
MAX_FORM_SCALE = 1000


def _environment_id(session: Session) -> str:
    """The session's environment, chosen now if the session has none yet (a list needs one, or it lists all)."""
    if not session.environment_id:
        environments_of(session)
    return session.environment_id


def _is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- stacks list ------------------------------------------------------------------------------------------------


def _stack_summaries(session: Session) -> list[dict[str, Any]]:
    environment = _environment_id(session)
    stacks = session.client().stacks.list_all(environment) if environment else []
    return [stack_summary(s) for s in sorted(stacks, key=lambda s: s["name"])]


@router.get("/stacks")
def stacks_page(request: Request, session: PageSession) -> HTMLResponse:
    return render(request, session, "stacks.html", stacks=_stack_summaries(session))


@router.get("/stacks/rows")
def stacks_rows(request: Request, session: PageSession) -> HTMLResponse:
    return render(request, session, "_stacks_rows.html", stacks=_stack_summaries(session))


# -- import -----------------------------------------------------------------------------------------------------


def _import_page(
    request: Request, session: Session, form: dict[str, Any], errors: dict[str, str], status_code: int = 200
) -> HTMLResponse:
    return render(request, session, "stack_new.html", status_code, form=form, errors=errors)


@router.get("/stacks/new")
def new_stack_page(request: Request, session: PageSession) -> HTMLResponse:
    form = {"name": "", "compose": "", "rancher_compose": "", "answers": "", "start": True}
    return _import_page(request, session, form, {})


def import_form(
    name: Annotated[str, Form()] = "",
    compose: Annotated[str, Form()] = "",
    rancher_compose: Annotated[str, Form()] = "",
    answers: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """The import form as typed: what its Import and Preview buttons read, and what a page with errors shows again."""
    return {
        "name": name.strip(),
        "compose": compose,
        "rancher_compose": rancher_compose,
        "answers": answers,
        "start": bool(start),
    }


ImportForm = Annotated[dict[str, Any], Depends(import_form)]


@router.post("/stacks/new")
def import_stack(request: Request, session: PostSession, form: ImportForm) -> Response:
    name, compose, rancher_compose, answers, start = (
        form[key] for key in ("name", "compose", "rancher_compose", "answers", "start")
    )
    try:
        if not compose.strip():
            raise InvalidInput("docker-compose.yml: paste the compose file of the stack", field="compose")
        answer_values = parse_answers(answers, file_name=ANSWERS_NAME)
        rancher_text: str | None = rancher_compose if rancher_compose.strip() else None
        if not start:
            rancher_text = without_start(compose, rancher_text)
        environment = _environment_id(session)
        if not environment:
            raise InvalidInput("there is no environment to import the stack into: create one first")
        created = session.client().stacks.create(
            environment, name, compose, rancher_compose=rancher_text, answers=answer_values
        )
    except CorralError as exc:
        errors = {import_field_of(exc): exc.message}
        return _import_page(request, session, form, errors, 409 if exc.status == 409 else 422)
    return _back(f"/ui/stacks/{created['id']}?imported=1")


# -- one stack --------------------------------------------------------------------------------------------------


def _stack_context(session: Session, stack_id: str) -> dict[str, Any]:
    stack = session.client().stacks.get(stack_id)
    containers = container_rows(stack["services"])
    return {
        "stack": stack,
        "summary": stack_summary(stack),
        "containers": containers,
        "actions": stack_actions(stack),
        "power": power_actions(containers),
        "progress": stack_progress(containers),
        "can_change": may_change(session, Resource.STACKS),
    }


def _switched_away(request: Request, session: Session, environment_id: str) -> bool:
    """The environment switcher was used on a page of another environment's stack or service."""
    return bool(request.query_params.get("env")) and environment_id != session.environment_id


@router.get("/stacks/{stack_id}")
def stack_page(
    request: Request, stack_id: str, session: PageSession, imported: str = "", upgraded: str = ""
) -> Response:
    context = _stack_context(session, stack_id)
    if _switched_away(request, session, context["stack"]["environment_id"]):
        return _back("/ui/stacks")
    builds = session.client().stacks.builds(stack_id) if "builds" in context["stack"] else []
    return render(
        request, session, "stack.html", imported=bool(imported), upgraded=bool(upgraded), builds=builds, **context
    )


@router.get("/stacks/{stack_id}/builds")
def stack_builds(request: Request, stack_id: str, session: PageSession) -> HTMLResponse:
    """The builds' table alone: the stack page's script patches its rows in place (the open logs stay)."""
    builds = session.client().stacks.builds(stack_id)
    return render(request, session, "_stack_builds.html", stack={"id": stack_id}, builds=builds)


@router.get("/stacks/{stack_id}/builds/{build_id}/log")
async def build_log(stack_id: str, build_id: str, session: PageSession) -> Response:
    """A build's log as plain text from its first kept line, live until the build ends (relayed from
    `/v1/stacks/{id}/builds/{id}/log?follow=true`)."""
    path = f"/v1/stacks/{quote(stack_id, safe='')}/builds/{quote(build_id, safe='')}/log"
    return await relay_stream(session, path, {"follow": True}, "text/plain; charset=utf-8")


@router.get("/stacks/{stack_id}/live")
def stack_live(request: Request, stack_id: str, session: PageSession) -> HTMLResponse:
    return render(request, session, "_stack_services.html", **_stack_context(session, stack_id))


@router.post("/stacks/{stack_id}/delete")
def delete_stack(stack_id: str, session: PostSession) -> Response:
    session.client().stacks.delete(stack_id)
    return _back("/ui/stacks")


@router.post("/stacks/{stack_id}/{action}")
def stack_upgrade_action(stack_id: str, action: str, session: PostSession) -> Response:
    if action not in ("confirm-upgrade", "rollback"):
        raise InvalidInput(f"unknown stack action {action!r}", field="action")
    session.client().stacks.upgrade_action("stacks", stack_id, action)
    return _back(f"/ui/stacks/{stack_id}")


# -- one service ------------------------------------------------------------------------------------------------


def _service_context(session: Session, service_id: str) -> dict[str, Any]:
    service = session.client().stacks.get_service(service_id)
    return {"service": service, "containers": container_rows([service]), "actions": service_actions(service)}


@router.get("/services/{service_id}")
def service_page(request: Request, service_id: str, session: PageSession) -> Response:
    context = _service_context(session, service_id)
    if _switched_away(request, session, context["service"]["environment_id"]):
        return _back("/ui/stacks")
    return render(request, session, "service.html", **context)


@router.get("/services/{service_id}/live")
def service_live(request: Request, service_id: str, session: PageSession) -> HTMLResponse:
    return render(request, session, "_service_containers.html", **_service_context(session, service_id))


def _whole_number(value: str, field: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidInput(f"{field} must be a whole number, not {value.strip()!r}", field=field) from None
    if not low <= number <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}", field=field)
    return number


@router.post("/services/{service_id}/scale")
def scale_service(
    request: Request,
    service_id: str,
    session: PostSession,
    scale: Annotated[str, Form()] = "",
    delta: Annotated[str, Form()] = "",
) -> Response:
    """`delta` (the minus and plus buttons) applies to the scale the server has now, not a stale one in the page."""
    client = session.client()
    service: dict[str, Any] | None = None
    error = ""
    wanted = scale.strip()
    try:
        if delta.strip():
            step = _whole_number(delta, "delta", -MAX_FORM_SCALE, MAX_FORM_SCALE)
            current = int(client.stacks.get_service(service_id)["scale"])
            wanted = str(max(0, current + step))
        service = client.stacks.scale(service_id, _whole_number(wanted, "scale", 0, MAX_FORM_SCALE))
    except CorralError as exc:
        if not _is_htmx(request):
            raise
        error = exc.message
    if not _is_htmx(request):
        return _back(f"/ui/services/{service_id}")
    if service is None:
        service = client.stacks.get_service(service_id)
    response = render(
        request, session, "_service_scale.html", 422 if error else 200, service=service, error=error, value=wanted
    )
    if not error:
        response.headers["HX-Trigger"] = "corral:changed"
    return response


@router.post("/services/{service_id}/restart")
def restart_service(
    request: Request,
    service_id: str,
    session: PostSession,
    batch_size: Annotated[str, Form()] = "",
    interval_ms: Annotated[str, Form()] = "",
) -> Response:
    """All containers at once, or a rolling restart `batch_size` at a time."""
    message, error = "", ""
    try:
        batch = _whole_number(batch_size, "batch_size", 1, MAX_FORM_SCALE) if batch_size.strip() else None
        interval = _whole_number(interval_ms, "interval_ms", 0, 3_600_000) if interval_ms.strip() else 0
        session.client().stacks.restart_service(service_id, batch_size=batch, interval_ms=interval)
        message = f"restarting, {batch} at a time" if batch else "restarting all containers"
    except CorralError as exc:
        if not _is_htmx(request):
            raise
        error = exc.message
    if not _is_htmx(request):
        return _back(f"/ui/services/{service_id}")
    return render(request, session, "_stacks_notice.html", 422 if error else 200, message=message, error=error)


@router.post("/services/{service_id}/{action}")
def service_upgrade_action(service_id: str, action: str, session: PostSession) -> Response:
    if action not in ("confirm-upgrade", "rollback"):
        raise InvalidInput(f"unknown service action {action!r}", field="action")
    session.client().stacks.upgrade_action("services", service_id, action)
    return _back(f"/ui/services/{service_id}")
