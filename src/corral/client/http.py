"""The client proper. Errors from the server come back as the same error classes the server raised.

Why httpx: a transport seam (`transport=`) lets tests run the client against an in-process app, and the same
client speaks to a real server over TCP.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from corral.model.errors import (
    Conflict,
    CorralError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)

_BY_STATUS: dict[int, type[CorralError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    503: Unavailable,
}


def basic_auth_header(access_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{access_key}:{secret_key}".encode()).decode()


class CorralClient:
    def __init__(
        self,
        url: str,
        access_key: str = "",
        secret_key: str = "",
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {}
        if access_key or secret_key:
            headers["Authorization"] = basic_auth_header(access_key, secret_key)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CorralClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Corral server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- environments -------------------------------------------------------------------------------------------

    def list_environments(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.request("GET", "/v1/environments")["data"]
        return data

    def create_environment(self, name: str, orchestration: str = "cattle", description: str = "") -> dict[str, Any]:
        body = {"name": name, "orchestration": orchestration, "description": description}
        result: dict[str, Any] = self.request("POST", "/v1/environments", json=body)
        return result

    def get_environment(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/environments/{_segment(ref)}")
        return result

    def delete_environment(self, ref: str) -> None:
        self.request("DELETE", f"/v1/environments/{_segment(ref)}")

    # -- registration tokens ------------------------------------------------------------------------------------

    def create_registration_token(self, environment: str, description: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/v1/environments/{_segment(environment)}/registration-tokens", json={"description": description}
        )
        return result

    def list_registration_tokens(self, environment: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.request(
            "GET", f"/v1/environments/{_segment(environment)}/registration-tokens"
        )["data"]
        return data

    def delete_registration_token(self, token_id: str) -> None:
        self.request("DELETE", f"/v1/registration-tokens/{_segment(token_id)}")

    # -- hosts --------------------------------------------------------------------------------------------------

    def list_hosts(self, environment: str | None = None) -> list[dict[str, Any]]:
        params = {"environment": environment} if environment else {}
        data: list[dict[str, Any]] = self.request("GET", "/v1/hosts", params=params)["data"]
        return data

    def get_host(self, host_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/hosts/{_segment(host_id)}")
        return result

    def find_host(self, environment: str, ref: str) -> dict[str, Any]:
        """A host of an environment by id or name."""
        for host in self.list_hosts(environment):
            if ref in (host["id"], host["name"]):
                return host
        raise NotFound(f"host {ref!r} not found in environment {environment!r}", field="host")

    def create_host(
        self,
        environment: str,
        name: str,
        *,
        driver: str = "local",
        labels: dict[str, str] | None = None,
        arch: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"environment": environment, "name": name, "driver": driver, "labels": labels or {}}
        if arch:
            body["arch"] = arch
        result: dict[str, Any] = self.request("POST", "/v1/hosts", json=body)
        return result

    def update_host_labels(self, host_id: str, labels: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", f"/v1/hosts/{_segment(host_id)}", json={"labels": labels})
        return result

    def delete_host(self, host_id: str) -> None:
        self.request("DELETE", f"/v1/hosts/{_segment(host_id)}", timeout=120.0)

    def list_host_containers(self, host_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.request("GET", f"/v1/hosts/{_segment(host_id)}/containers")["data"]
        return data

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/healthz")
        return result


def _segment(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise InvalidInput(f"{value!r} is not a valid resource reference", field="ref")
    return httpx.URL(path=value).raw_path.decode()


def _error_from(response: httpx.Response) -> CorralError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    cls = _BY_STATUS.get(response.status_code, CorralError)
    error = cls(message or f"HTTP {response.status_code} from {response.request.url}", field=field)
    error.status = response.status_code
    return error
