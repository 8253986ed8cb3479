"""server/shared/warm_up.py: one in-process GET for a path no route takes goes through the whole application (its
included routers and a mounted sub-application) and runs no handler."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI

from corral.server.shared.warm_up import WARM_UP_PATH, warm_up_routing


def test_the_warm_up_request_reaches_no_route_and_answers_404() -> None:
    called: list[str] = []
    api = APIRouter()

    @api.get("/v1/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        called.append(thing_id)
        return {"id": thing_id}

    pages = APIRouter()

    @pages.get("/things/{thing_id}")
    def thing_page(thing_id: str) -> dict[str, str]:
        called.append(thing_id)
        return {"page": thing_id}

    app = FastAPI()
    app.include_router(api)
    ui = FastAPI()
    ui.include_router(pages)
    app.mount("/ui", ui)

    assert WARM_UP_PATH.startswith("/ui/")  # past every router of the app, then through the UI's
    assert asyncio.run(warm_up_routing(app)) == 404
    assert asyncio.run(warm_up_routing(app, "/v1/things")) == 404
    assert called == []
