"""The Preview button of the stack import form, and a stack's upgrade form (its compose files, edited) with its own
Preview: what the server would do (POST /v1/stacks/plan, `corral up --plan`), shown in the page, nothing changed.

Why a module of its own: the preview is one partial (`_stack_plan.html`) shared by both forms; the import form's
other routes stay in pages_stacks.py. Its router is included before pages_stacks' so that `/stacks/new/preview`
and `/stacks/{id}/upgrade/preview` are not taken for a stack action (the upgrade form: pages_stack_actions.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from corral.compose.envfile import parse_answers
from corral.model.errors import CorralError, InvalidInput
from corral.web.pages_stack_actions import UpgradeForm
from corral.web.pages_stacks import ImportForm, _environment_id, _import_page
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PostSession
from corral.web.stacks_view import ANSWERS_NAME, import_field_of, without_start

router = APIRouter()
MASKED = "********"


@router.post("/stacks/new/preview")
def preview_import(request: Request, session: PostSession, form: ImportForm) -> HTMLResponse:
    try:
        environment = _environment_id(session)
        if not environment:
            raise InvalidInput("there is no environment to import the stack into: create one first")
        rancher_text = form["rancher_compose"] if form["rancher_compose"].strip() else None
        plan = _plan(session, environment, form["name"], form["compose"], rancher_text, form["answers"], form["start"])
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
def preview_upgrade(request: Request, stack_id: str, session: PostSession, form: UpgradeForm) -> Response:
    """What the upgrade form's files would do, shown under the form (kept as typed); nothing is applied."""
    stack = session.client().stacks.get(stack_id)
    compose, rancher_compose, answers = form["compose"], form["rancher_compose"], form["answers"]
    rancher = rancher_compose if rancher_compose.strip() else None
    errors: dict[str, str] = {}
    plan: dict[str, Any] | None = None
    try:
        if MASKED in answers:
            raise InvalidInput(f"answers: give the secret answers shown as {MASKED} again", field=ANSWERS_NAME)
        plan = _plan(
            session, stack["environment_id"], stack["name"], compose, rancher, answers, rolling=form["rolling"]
        )
    except CorralError as exc:
        errors = {import_field_of(exc): exc.message}
    status = 200 if not errors else 422
    return render(request, session, "stack_upgrade.html", status, stack=stack, form=form, errors=errors, plan=plan)
