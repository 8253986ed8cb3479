"""Client calls for the hosts' images: `CorralClient.images` (issue 18).

Why its own module: images are listed across hosts with their own filters and removed per host, which no other
client module covers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from corral.client.caller import Caller


class ImagesClient:
    def __init__(self, client: Caller) -> None:
        self._client = client

    def list(self, environment: str, *, host: str | None = None, in_use: bool | None = None) -> list[dict[str, Any]]:
        params = {"environment": environment}
        if host:
            params["host"] = host
        if in_use is not None:
            params["in_use"] = "true" if in_use else "false"
        return self._client.list_pages("/v1/images", params)

    def delete(self, host_id: str, image: str) -> None:
        """Remove an unused image (id, id prefix or tag) from a host; Conflict naming its containers while in use."""
        self._client.request("DELETE", f"/v1/hosts/{quote(host_id, safe='')}/images/{quote(image, safe='')}")
