"""Every route is declared in the policy table (server/security/access_rules.py), and the table names no route that is
gone.

A new route without a rule fails here: add one line to RULES (and the matrix test calls it with every role)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from corral.model.access import Action
from corral.server.security.access_rules import RULES, RuleKind
from tests.security.routes import openapi_routes, v1_routes


def test_every_route_of_the_openapi_document_and_every_websocket_has_a_rule(api: TestClient) -> None:
    app = api.app
    routes = v1_routes(app)  # type: ignore[arg-type]
    documented = openapi_routes(app)  # type: ignore[arg-type]
    assert documented, "the OpenAPI document lists no /v1 route"
    assert documented <= routes, f"OpenAPI paths the app does not serve: {sorted(documented - routes)}"
    assert any(method == "WS" for method, _ in routes)
    missing = sorted(routes - set(RULES))
    assert not missing, f"routes without a rule in server/security/access_rules.py: {missing}"
    stale = sorted(set(RULES) - routes)
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_an_undeclared_route_is_admin_only(api: TestClient) -> None:
    router = APIRouter(prefix="/v1")

    @router.get("/undeclared-probe")
    def probe() -> dict[str, str]:
        return {"ok": "yes"}

    api.app.include_router(router)  # type: ignore[attr-defined]
    assert api.get("/v1/undeclared-probe").status_code == 200  # the admin
    assert api.post("/v1/users", json={"username": "probe", "password": "long enough pw"}).status_code == 201
    session = api.post("/v1/login", json={"username": "probe", "password": "long enough pw"}).json()
    headers = {"Authorization": f"Bearer {session['access_key']}:{session['secret_key']}"}
    response = api.get("/v1/undeclared-probe", headers=headers)
    assert response.status_code == 403, response.text


# calls other than GET that change nothing, and so are reads: what the role matrix lets read-only make
CHANGES_NOTHING = {
    ("POST", "/v1/environments/{ref}/templates/{catalog}/{template}/preview"),  # renders, stores nothing
    ("WS", "/v1/events"),  # a stream out: what the client sends is read and dropped (server/routes/event_stream.py)
}


def test_every_call_that_may_change_an_environment_is_declared_a_write() -> None:
    """The matrix compares every route with the table; this holds the table to the methods, so that read-only's
    403 on every change does not hang on each line being right: a POST, PUT, PATCH, DELETE or websocket of an
    environment is a write unless it is named above as one that changes nothing."""
    declared_reads = sorted(
        route
        for route, rule in RULES.items()
        if rule.kind is RuleKind.ENVIRONMENT and route[0] != "GET" and rule.action is not Action.WRITE
    )
    assert declared_reads == sorted(CHANGES_NOTHING), "a change declared READ in server/security/access_rules.py?"
