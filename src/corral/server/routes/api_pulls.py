"""The route of `corral pull` (issue 18): `POST /v1/stacks/{stack_id}/pull`, body optional `{"services": [...]}`.

Why a POST that stores nothing: it makes hosts pull (bandwidth, disk), so only those who may change the stack may
ask (policy table); the work and its answer are server/hub/image_pulls.py's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from corral.model.entities import Principal
from corral.server.hub.image_pulls import StackPulls
from corral.server.security.auth import require_admin

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(default=None, max_length=500)


@router.post("/stacks/{stack_id}/pull")
async def pull_stack(
    request: Request, stack_id: str, _: Admin, body: Annotated[PullRequest | None, Body()] = None
) -> dict[str, Any]:
    """Pull the images of the stack's services (or of the services named) on the hosts they may run on; one
    result per host and image: pulled, present, failed (with the engine's reason) or skipped."""
    pulls: StackPulls = request.app.state.pulls
    return await pulls.pull(stack_id, body.services if body is not None else None)
