"""Client calls for catalogs: sources, templates, install and upgrade from a template.

Why its own module: the catalog API is a family of its own; `CorralClient.catalog` is an instance of this class.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller
from corral.model.errors import NotFound


def _segment(value: str) -> str:
    return quote(value, safe="")


class CatalogClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    # -- sources ------------------------------------------------------------------------------------------------

    def sources(self, environment: str | None = None) -> list[dict[str, Any]]:
        params = {"environment": environment} if environment else None
        data: list[dict[str, Any]] = self._client.request("GET", "/v1/catalogs", params=params)["data"]
        return data

    def add(
        self, name: str, kind: str, url: str, *, branch: str = "", environment: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "kind": kind, "url": url, "branch": branch, "environment": environment}
        result: dict[str, Any] = self._client.request("POST", "/v1/catalogs", json=body, timeout=300.0)
        return result

    def find_source(self, ref: str, environment: str | None = None) -> dict[str, Any]:
        """A source by id, or by name (the one the environment sees when one is given)."""
        for source in self.sources(environment):
            if ref in (source["id"], source["name"]):
                return source
        raise NotFound(f"catalog {ref!r} not found", field="catalog")

    def remove(self, catalog_id: str) -> None:
        self._client.request("DELETE", f"/v1/catalogs/{_segment(catalog_id)}")

    def refresh(self, catalog_id: str) -> dict[str, Any]:
        path = f"/v1/catalogs/{_segment(catalog_id)}/refresh"
        result: dict[str, Any] = self._client.request("POST", path, timeout=300.0)
        return result

    # -- templates ----------------------------------------------------------------------------------------------

    def templates(self, environment: str) -> dict[str, Any]:
        """{"data": [template summaries], "problems": {what: reason}}."""
        result: dict[str, Any] = self._client.request("GET", f"/v1/environments/{_segment(environment)}/templates")
        return result

    def template(self, catalog: str, template: str, environment: str) -> dict[str, Any]:
        path = f"/v1/templates/{_segment(catalog)}/{_segment(template)}"
        result: dict[str, Any] = self._client.request("GET", path, params={"environment": environment})
        return result

    def install(
        self,
        environment: str,
        catalog: str,
        template: str,
        stack: str,
        *,
        version: str | None = None,
        answers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._post_template(environment, catalog, template, "install", stack, version, answers)

    def preview(
        self,
        environment: str,
        catalog: str,
        template: str,
        stack: str,
        *,
        version: str | None = None,
        answers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """What `install` would deploy (rendered files, resolved answers, services), without installing."""
        return self._post_template(environment, catalog, template, "preview", stack, version, answers)

    def _post_template(
        self,
        environment: str,
        catalog: str,
        template: str,
        action: str,
        stack: str,
        version: str | None,
        answers: dict[str, str] | None,
    ) -> dict[str, Any]:
        path = f"/v1/environments/{_segment(environment)}/templates/{_segment(catalog)}/{_segment(template)}/{action}"
        body = {"stack": stack, "version": version, "answers": answers or {}}
        result: dict[str, Any] = self._client.request("POST", path, json=body)
        return result

    def icon(self, catalog: str, template: str, environment: str) -> tuple[bytes, str]:
        """A template's icon: (bytes, media type)."""
        path = f"/v1/templates/{_segment(catalog)}/{_segment(template)}/icon"
        return self._client.request_bytes("GET", path, params={"environment": environment})

    def upgrade(
        self, stack_id: str, *, version: str | None = None, answers: dict[str, str] | None = None, **strategy: Any
    ) -> dict[str, Any]:
        body = {"version": version, "answers": answers or {}, **{k: v for k, v in strategy.items() if v is not None}}
        result: dict[str, Any] = self._client.request(
            "POST", f"/v1/stacks/{_segment(stack_id)}/catalog-upgrade", json=body
        )
        return result
