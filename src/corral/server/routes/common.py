"""What several route modules render alike: the view of one stack, as `corral up`, `corral stack` and the catalog's
install and upgrade answer it.

Why here: route modules never import each other (pyproject.toml's import-linter contracts); a rendering two of them
share lives here, a write they share in services/.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from corral.model.stack import Stack
from corral.server.services.catalog_service import CatalogService
from corral.server.services.stack_builds import add_builds
from corral.server.services.stacks import stack_service_of, stacks_of, store_of
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.stack_views import stack_view


def state_of(request: Request, environment_id: str | None) -> EnvironmentState:
    return EnvironmentState.load(store_of(request), stacks_of(request), environment_id)


def with_offers(request: Request, stack: Stack, view: dict[str, Any]) -> dict[str, Any]:
    """A stack installed from a catalog lists the template versions it may upgrade to (`catalog.upgrades`)."""
    catalogs: CatalogService | None = getattr(request.app.state, "catalogs", None)
    if stack.catalog and catalogs is not None:
        view["catalog"]["upgrades"] = catalogs.upgrade_offers(stack.environment_id, stack.catalog)
    return view


def stack_result(request: Request, stack_id: str) -> dict[str, Any]:
    """The view of one stack, with its catalog upgrade offers and its builds."""
    stack = stacks_of(request).get_stack(stack_id)
    view = with_offers(request, stack, stack_view(stack, state_of(request, stack.environment_id)))
    return add_builds(stack_service_of(request).builds, view)
