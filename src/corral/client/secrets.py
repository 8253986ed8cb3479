"""Client calls for environment secrets: `CorralClient.secrets`.

Why its own module: a secret's value goes out in one request body and never comes back; the server lists names
and times only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller


def _segment(value: str) -> str:
    return quote(value, safe="")


class SecretsClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def create(self, environment: str, name: str, value: str) -> dict[str, Any]:
        path = f"/v1/environments/{_segment(environment)}/secrets"
        result: dict[str, Any] = self._client.request("POST", path, json={"name": name, "value": value})
        return result

    def list(self, environment: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._client.request("GET", f"/v1/environments/{_segment(environment)}/secrets")[
            "data"
        ]
        return data

    def delete(self, environment: str, name: str) -> None:
        self._client.request("DELETE", f"/v1/environments/{_segment(environment)}/secrets/{_segment(name)}")
