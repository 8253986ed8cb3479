"""What a family of client calls needs from the client: send one request, walk a paged collection, read bytes.

Why a Protocol of its own: `CorralClient` (client/http.py) holds an instance of each family (catalog, secrets,
volumes, certificates) and each family calls back through the client; typing them against this instead of the
class keeps the imports one way (http -> families -> caller), with no cycle hidden behind `TYPE_CHECKING`.
"""

from __future__ import annotations

from typing import Any, Protocol


class Caller(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def list_pages(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]: ...

    def request_bytes(self, method: str, path: str, **kwargs: Any) -> tuple[bytes, str]: ...
