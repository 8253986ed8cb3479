"""The Preview button of the stack import form, and a stack's upgrade form (its compose files, edited) with its own
Preview: what the server would do (POST /v1/stacks/plan, `corral up --plan`), shown in the page, nothing changed.

Why a module of its own: the preview is one partial (`_stack_plan.html`) shared by both forms; the import form's
other routes stay in pages_stacks.py. Its router is included before pages_stacks' so that `/stacks/new/preview`
and `/stacks/{id}/upgrade/preview` are not taken for a stack action (the upgrade form: pages_stack_actions.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from corral.compose.envfile import parse_answers
from corral.model.errors import CorralError, InvalidInput
from corral.web.pages_stacks import _environment_id, _import_page
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PostSession
from corral.web.stacks_view import ANSWERS_NAME, COMPOSE_NAME, RANCHER_COMPOSE_NAME, import_field_of, without_start

router = APIRouter()
MASKED = "********"


@router.post("/stacks/new/preview")
def preview_import(
    request: Request,
    session: PostSession,
    name: Annotated[str, Form()] = "",
    compose: Annotated[str, Form()] = "",
    rancher_compose: Annotated[str, Form()] = "",
    answers: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
) -> HTMLResponse:
    form: dict[str, Any] = {"name": name.strip(), "compose": compose, "rancher_compose": rancher_compose}
    form.update(answers=answers, start=bool(start))
    try:
        environment = _environment_id(session)
        if not environment:
            raise InvalidInput("there is no environment to import the stack into: create one first")
        rancher_text = rancher_compose if rancher_compose.strip() else None
        plan = _plan(session, environment, name.strip(), compose, rancher_text, answers, bool(start))
    except CorralError as exc:
        return _import_page(
            request, session, form, {import_field_of(exc): exc.message}, 409 if exc.status == 409 else 422
        )
    return render(request, session, "stack_new.html", form=form, errors={}, plan=plan)


def _plan(
    session: Session,
    environment: str,
    name: str,
    compose: str,
    rancher: str | None,
    answers: str,
    start: bool = True,
    *,
    rolling: bool = False,
) -> dict[str, Any]:
    if not compose.strip():
        raise InvalidInput("docker-compose.yml: paste the compose file of the stack", field="compose")
    values = parse_answers(answers, file_name=ANSWERS_NAME)
    if not start:
        rancher = without_start(compose, rancher)
    result: dict[str, Any] = session.client().stacks.up(
        environment, name, compose, rancher_compose=rancher, answers=values, upgrade={} if rolling else None, plan=True
    )
    return result


# -- upgrade: Preview in the stack's upgrade form (the form itself: pages_stack_actions.py) --------------------


@router.post("/stacks/{stack_id}/upgrade/preview")
def preview_upgrade(
    request: Request,
    stack_id: str,
    session: PostSession,
    compose: Annotated[str, Form()] = "",
    compose_name: Annotated[str, Form()] = COMPOSE_NAME,
    rancher_compose: Annotated[str, Form()] = "",
    rancher_compose_name: Annotated[str, Form()] = RANCHER_COMPOSE_NAME,
    answers: Annotated[str, Form()] = "",
    rolling: Annotated[str, Form()] = "",
    batch_size: Annotated[str, Form()] = "1",
    start_first: Annotated[str, Form()] = "",
) -> Response:
    """What the upgrade form's files would do, shown under the form (kept as typed); nothing is applied."""
    stack = session.client().stacks.get(stack_id)
    form = {
        "compose": compose,
        "compose_name": compose_name,
        "rancher_compose": rancher_compose,
        "rancher_compose_name": rancher_compose_name,
        "answers": answers,
        "rolling": bool(rolling),
        "batch_size": batch_size,
        "start_first": bool(start_first),
    }
    rancher = rancher_compose if rancher_compose.strip() else None
    errors: dict[str, str] = {}
    plan: dict[str, Any] | None = None
    try:
        if MASKED in answers:
            raise InvalidInput(f"answers: give the secret answers shown as {MASKED} again", field=ANSWERS_NAME)
        plan = _plan(session, stack["environment_id"], stack["name"], compose, rancher, answers, rolling=bool(rolling))
    except CorralError as exc:
        errors = {import_field_of(exc): exc.message}
    status = 200 if not errors else 422
    return render(request, session, "stack_upgrade.html", status, stack=stack, form=form, errors=errors, plan=plan)
