"""Client calls for standalone containers: `CorralClient.standalone` (`corral run`, issue 18).

Why its own module: a standalone container has its own id (it exists before it is placed and after its host is
gone), listed by `GET /v1/containers?standalone=true`; stop and start are the container calls every container has.
"""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller
from corral.model.errors import NotFound


class StandaloneClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def run(self, environment: str, image: str, **fields: Any) -> dict[str, Any]:
        """Create one: fields `name`, `command` (list), `env` (dict), `ports` (["8080:80"]), `labels`, `restart`,
        `host`; those left None are not sent."""
        body = {"environment": environment, "image": image, **{k: v for k, v in fields.items() if v is not None}}
        result: dict[str, Any] = self._client.request("POST", "/v1/containers", json=body)
        return result

    def list(self, environment: str) -> builtins.list[dict[str, Any]]:
        return self._client.list_pages("/v1/containers", {"environment": environment, "standalone": "true"})

    def find(self, environment: str, ref: str) -> dict[str, Any]:
        for container in self.list(environment):
            if ref in (container["id"], container["name"], container["container_id"]):
                return container
        raise NotFound(f"standalone container {ref!r} not found in environment {environment!r}", field="container")

    def remove(self, container_id: str) -> None:
        self._client.request("DELETE", f"/v1/containers/{quote(container_id, safe='')}")
