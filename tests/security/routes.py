"""Every /v1 route of the real application as (method, path), websockets with the method "WS"."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, routing
from fastapi.routing import APIRoute, APIWebSocketRoute


def v1_routes(app: FastAPI) -> set[tuple[str, str]]:
    contexts: list[Any] = (
        list(routing.iter_route_contexts(app.routes))  # FastAPI >= 0.160 keeps included routers unflattened
        if hasattr(routing, "iter_route_contexts")
        else app.routes
    )
    found: set[tuple[str, str]] = set()
    for context in contexts:
        route = getattr(context, "original_route", context)
        path = getattr(context, "path_format", None) or getattr(route, "path", "")
        if not path.startswith("/v1/"):
            continue
        if isinstance(route, APIWebSocketRoute):
            found.add(("WS", path))
        elif isinstance(route, APIRoute):
            found.update((method, path) for method in route.methods if method != "HEAD")
    return found


def openapi_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
