"""Client calls of access control: sign-in, users, members, API keys, the audit log.

Why its own module: a family of routes of its own (server/routes/api_access.py); `AccessClient(client)` wraps any
`CorralClient`, so the CLI, the UI and tests share one spelling of each call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller


def _segment(value: str) -> str:
    return quote(value, safe="")


class AccessClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def _data(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._client.request("GET", path, params=params)["data"]
        return data

    # -- sign-in ----------------------------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> dict[str, Any]:
        """A session key pair for a user name and password (the call needs no key of its own)."""
        result: dict[str, Any] = self._client.request(
            "POST", "/v1/login", json={"username": username, "password": password}
        )
        return result

    def logout(self) -> None:
        self._client.request("POST", "/v1/logout")

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", "/v1/me")
        return result

    # -- users ------------------------------------------------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        return self._data("/v1/users")

    def create_user(self, username: str, password: str, *, admin: bool = False) -> dict[str, Any]:
        body = {"username": username, "password": password, "admin": admin}
        result: dict[str, Any] = self._client.request("POST", "/v1/users", json=body)
        return result

    def update_user(self, user: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("PATCH", f"/v1/users/{_segment(user)}", json=changes)
        return result

    def delete_user(self, user: str) -> None:
        self._client.request("DELETE", f"/v1/users/{_segment(user)}")

    # -- members ----------------------------------------------------------------------------------------------------

    def members(self, environment: str) -> list[dict[str, Any]]:
        return self._data(f"/v1/environments/{_segment(environment)}/members")

    def set_member(self, environment: str, role: str, *, user: str | None = None, group: str | None = None) -> Any:
        body = {"role": role, **({"user": user} if user else {}), **({"group": group} if group else {})}
        return self._client.request("PUT", f"/v1/environments/{_segment(environment)}/members", json=body)

    def remove_member(self, environment: str, kind: str, subject: str) -> None:
        path = f"/v1/environments/{_segment(environment)}/members/{_segment(kind)}/{_segment(subject)}"
        self._client.request("DELETE", path)

    # -- keys -------------------------------------------------------------------------------------------------------

    def list_keys(self, environment: str | None = None) -> list[dict[str, Any]]:
        if environment:
            return self._data(f"/v1/environments/{_segment(environment)}/keys")
        return self._data("/v1/keys")

    def create_key(
        self, *, environment: str | None = None, role: str | None = None, description: str = "", expires: str = "never"
    ) -> dict[str, Any]:
        """A new key and its secret (shown by this answer only)."""
        body: dict[str, Any] = {"description": description, "expires": expires}
        if environment:
            body["role"] = role or "read-only"
            path = f"/v1/environments/{_segment(environment)}/keys"
        else:
            path = "/v1/keys"
        result: dict[str, Any] = self._client.request("POST", path, json=body)
        return result

    def delete_key(self, access_key: str) -> None:
        self._client.request("DELETE", f"/v1/keys/{_segment(access_key)}")

    # -- audit ------------------------------------------------------------------------------------------------------

    def audit(
        self,
        *,
        environment: str | None = None,
        user: str | None = None,
        since: float | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page, newest first: {"data": [...], "next": id to pass as `before` or None}."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("environment", environment), ("user", user), ("since", since), ("before", before)):
            if value is not None:
                params[name] = value
        result: dict[str, Any] = self._client.request("GET", "/v1/audit", params=params)
        return result
