"""UI routes for a whole stack: stop and start all its containers, view its compose files as last applied, and
upgrade it from edited files (all at once, or as a rolling in-service upgrade to finish or roll back).

Why through the container and `up` routes of the API: a stack stop is what `corral stop STACK` does (every current
container of the stack asked to stop), and an upgrade is what `corral up` does with the edited files; the page then
follows the containers' transitional states (`stopping`, `starting`) through the event stream, so the operator
watches the change finish rather than a button that returned at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.compose.envfile import parse_answers
from corral.model.access import Resource
from corral.model.errors import CorralError, InvalidInput
from corral.web.permissions import may_change
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession
from corral.web.stacks_view import ANSWERS_NAME, compose_files, import_field_of

router = APIRouter()
FormText = Annotated[str, Form()]
MAX_BATCH = 100


@router.post("/stacks/{stack_id}/stop")
def stop_stack(stack_id: str, session: PostSession) -> Response:
    return _power(session, stack_id, "stop", "running")


@router.post("/stacks/{stack_id}/start")
def start_stack(stack_id: str, session: PostSession) -> Response:
    return _power(session, stack_id, "start", "stopped")


def _power(session: Session, stack_id: str, action: str, from_desired: str) -> Response:
    """Ask each current container that is not yet where `action` leads; the stack page shows the progress."""
    stacks = session.client().stacks
    stack = stacks.get(stack_id)
    for service in stack["services"]:
        for container in service.get("containers", []):
            if not container.get("retired") and container.get("desired", "running") == from_desired:
                stacks.container_action(container["id"], action)
    return RedirectResponse(f"/ui/stacks/{stack_id}", status_code=303)


@router.get("/stacks/{stack_id}/compose")
def compose_view(request: Request, stack_id: str, session: PageSession) -> HTMLResponse:
    client = session.client()
    stack = client.stacks.get(stack_id)
    exported = client.stacks.files(stack_id)
    return render(
        request,
        session,
        "stack_compose.html",
        stack=stack,
        files=sorted(exported.get("files", {}).items(), key=lambda item: ("rancher-compose" in item[0], item[0])),
        answers=sorted(exported.get("answers", {}).items()),
        profiles=exported.get("profiles", []),
        warnings=exported.get("warnings", []),
        can_change=may_change(session, Resource.STACKS),
    )


def _upgrade_page(
    request: Request,
    session: Session,
    stack: dict[str, Any],
    form: dict[str, Any],
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(request, session, "stack_upgrade.html", status, stack=stack, form=form, errors=errors or {})


@router.get("/stacks/{stack_id}/upgrade")
def upgrade_page(request: Request, stack_id: str, session: PageSession) -> HTMLResponse:
    client = session.client()
    stack = client.stacks.get(stack_id)
    form: dict[str, Any] = {**compose_files(client.stacks.files(stack_id)), "rolling": True, "batch_size": "1"}
    form["start_first"] = False
    return _upgrade_page(request, session, stack, form)


def upgrade_form(
    compose: FormText = "",
    compose_name: FormText = "docker-compose.yml",
    rancher_compose: FormText = "",
    rancher_compose_name: FormText = "rancher-compose.yml",
    answers: FormText = "",
    rolling: FormText = "",
    batch_size: FormText = "1",
    start_first: FormText = "",
) -> dict[str, Any]:
    """The upgrade form as typed: what its Upgrade and Preview buttons read, and what a page with errors shows again."""
    return {
        "compose": compose,
        "compose_name": compose_name,
        "rancher_compose": rancher_compose,
        "rancher_compose_name": rancher_compose_name,
        "answers": answers,
        "rolling": bool(rolling),
        "batch_size": batch_size,
        "start_first": bool(start_first),
    }


UpgradeForm = Annotated[dict[str, Any], Depends(upgrade_form)]


@router.post("/stacks/{stack_id}/upgrade")
def upgrade_stack(request: Request, stack_id: str, session: PostSession, form: UpgradeForm) -> Response:
    """`corral up` of the edited files; rolling: changed services upgrade in batches, kept for a rollback."""
    stacks = session.client().stacks
    stack = stacks.get(stack_id)
    profiles = list(stacks.files(stack_id).get("profiles") or [])  # kept: the form does not change them
    compose, compose_name, rancher_compose, rancher_compose_name, answers, batch_size = (
        form[key]
        for key in ("compose", "compose_name", "rancher_compose", "rancher_compose_name", "answers", "batch_size")
    )
    try:
        if stack.get("catalog"):
            raise InvalidInput("a catalog stack is upgraded from its template's page (its catalog upgrade)")
        if not compose.strip():
            raise InvalidInput(f"{compose_name}: the compose file is empty", field="compose")
        upgrade: dict[str, Any] | None = None
        if form["rolling"]:
            size = int(batch_size) if batch_size.strip().isdigit() else 0
            if not 1 <= size <= MAX_BATCH:
                raise InvalidInput(f"batch size: a whole number from 1 to {MAX_BATCH}", field="batch_size")
            upgrade = {"batch_size": size, "start_first": form["start_first"]}
        stacks.up(
            stack["environment_id"],
            stack["name"],
            compose,
            compose_name=compose_name or "docker-compose.yml",
            rancher_compose=rancher_compose if rancher_compose.strip() else None,
            rancher_compose_name=rancher_compose_name or "rancher-compose.yml",
            answers=parse_answers(answers, file_name=ANSWERS_NAME),
            upgrade=upgrade,
            profiles=profiles,
        )
    except CorralError as exc:
        field = exc.field if exc.field == "batch_size" else import_field_of(exc)
        status = 409 if exc.status == 409 else 422
        return _upgrade_page(request, session, stack, form, status, {field: exc.message})
    return RedirectResponse(f"/ui/stacks/{stack_id}?upgraded=1", status_code=303)
