"""Client calls for environment certificates: `CorralClient.certificates`.

Why its own module: a certificate's key goes out in one request body and never comes back; the server shows the
certificate's subject, SANs and expiry only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller


def _segment(value: str) -> str:
    return quote(value, safe="")


class CertificatesClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def _path(self, environment: str, name: str = "") -> str:
        path = f"/v1/environments/{_segment(environment)}/certificates"
        return f"{path}/{_segment(name)}" if name else path

    def create(self, environment: str, name: str, cert: str, key: str) -> dict[str, Any]:
        body = {"name": name, "cert": cert, "key": key}
        result: dict[str, Any] = self._client.request("POST", self._path(environment), json=body)
        return result

    def replace(self, environment: str, name: str, cert: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "PUT", self._path(environment, name), json={"cert": cert, "key": key}
        )
        return result

    def list(self, environment: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._client.request("GET", self._path(environment))["data"]
        return data

    def get(self, environment: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", self._path(environment, name))
        return result

    def delete(self, environment: str, name: str) -> None:
        self._client.request("DELETE", self._path(environment, name))
