"""`GET /v1/stacks/{id}/files`: a stack's compose files as last applied, for `corral export`.

Why a route of its own: the stack view describes what runs; this gives back what the user wrote (docker-compose.yml,
rancher-compose.yml, the answers and profiles used), so that `corral export` then `corral up` reproduces the stack.
A catalog stack's secret answers are masked wherever they appear, and a warning says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from corral.model.entities import Principal
from corral.server.security.auth import require_admin
from corral.store.stacks import StackStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
MASK = "********"


@router.get("/stacks/{stack_id}/files")
def stack_files(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    stacks: StackStore = request.app.state.stacks
    stack = stacks.get_stack(stack_id)
    stored = stacks.stack_files(stack.id)
    answers = {str(k): str(v) for k, v in dict(stored.get("answers") or {}).items()}
    hidden = {answers[k] for k in stack.catalog.get("secrets", ()) if answers.get(k)} if stack.catalog else set()
    files: dict[str, str] = {}
    for name, text in stored.items():
        if name in ("answers", "profiles") or not isinstance(text, str):
            continue
        for value in sorted(hidden, key=len, reverse=True):
            text = text.replace(value, MASK)
        files[name] = text
    warnings = [f"secret answers are shown as {MASK}: give them again when applying"] if hidden else []
    return {
        "id": stack.id,
        "name": stack.name,
        "files": files,
        "answers": {k: MASK if v in hidden else v for k, v in answers.items()},
        "profiles": list(stored.get("profiles") or []),
        "warnings": warnings,
    }
