"""`PUT /v1/stacks` with compose `build:` through the real API on a real database: the image is named by the
context's digest, an unchanged context keeps it (nothing changes), `never` keeps the previous build, and a missing
or forged context is a 422 naming the service, with nothing stored."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from typing import Any

from fastapi.testclient import TestClient

COMPOSE = "services:\n  web:\n    build: ./web\n  db:\n    image: postgres:16\n"


def context(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def up(api: TestClient, data: bytes | None, *, mode: str = "auto", digest: str | None = None) -> Any:
    body: dict[str, Any] = {"name": "app", "compose": COMPOSE, "build": mode}
    if data is not None:
        real = hashlib.sha256(data).hexdigest()
        body["build_contexts"] = {digest or real: base64.b64encode(data).decode()}
        body["build_context_of"] = {"web": digest or real}
    return api.put("/v1/stacks", json=body)


def images(result: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["image"] for s in result["services"]}


def test_the_built_image_is_named_by_digest_and_kept_while_the_context_is_unchanged(api: TestClient) -> None:
    first = up(api, context("FROM corral/busybox\n"))
    assert first.status_code == 201, first.text
    web = images(first.json())["web"]
    assert web.startswith("corral-build/app-web:") and len(web.rsplit(":", 1)[1]) == 12
    assert images(first.json())["db"] == "postgres:16"
    assert first.json()["builds"] == []  # no host to build on yet

    again = up(api, context("FROM corral/busybox\n"))
    assert again.status_code == 200 and again.json()["changed_services"] == []
    kept = up(api, None, mode="never")
    assert kept.status_code == 200 and images(kept.json())["web"] == web
    forced = up(api, context("FROM corral/busybox\n"), mode="force")
    assert images(forced.json())["web"] != web and forced.json()["changed_services"] == ["web"]
    changed = up(api, context("FROM corral/busybox\nCMD sleep 1\n"))
    assert images(changed.json())["web"] not in (web, images(forced.json())["web"])


def test_a_missing_or_forged_context_is_refused_and_nothing_is_stored(api: TestClient) -> None:
    missing = up(api, None)
    assert missing.status_code == 422
    assert missing.json()["message"].startswith("service web: its build context was not sent")
    forged = up(api, context("FROM corral/busybox\n"), digest="0" * 64)
    assert forged.status_code == 422 and "its bytes have another digest" in forged.json()["message"]
    never = up(api, None, mode="never")
    assert never.status_code == 422 and "--no-build, but its image was never built" in never.json()["message"]
    bad_mode = up(api, None, mode="sometimes")
    assert bad_mode.status_code == 422 and "build must be one of auto, force, never" in bad_mode.json()["message"]
    assert api.get("/v1/stacks").json()["data"] == []
