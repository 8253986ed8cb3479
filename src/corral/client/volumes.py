"""Client calls for volumes: `CorralClient.volumes` (issue 17 item 4).

Why its own module: the volume routes take the environment as a query parameter (a volume is named, not given an
id), which every call here passes the same way.
"""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller


class VolumesClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def list(
        self, environment: str, *, stack: str | None = None, host: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"environment": environment}
        params.update({k: v for k, v in (("stack", stack), ("host", host), ("state", state)) if v})
        return self._client.list_pages("/v1/volumes", params)

    def get(self, environment: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "GET", f"/v1/volumes/{quote(name, safe='')}", params={"environment": environment}
        )
        return result

    def create(
        self,
        environment: str,
        name: str,
        *,
        driver: str = "local",
        driver_opts: dict[str, str] | None = None,
        hosts: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"environment": environment, "name": name, "driver": driver}
        if driver_opts:
            body["driver_opts"] = driver_opts
        if hosts:
            body["hosts"] = hosts
        result: dict[str, Any] = self._client.request("POST", "/v1/volumes", json=body)
        return result

    def delete(self, environment: str, name: str) -> None:
        self._client.request("DELETE", f"/v1/volumes/{quote(name, safe='')}", params={"environment": environment})
