"""`PUT /v1/stacks` with compose `build:` through the real API on a real database: the image is named by the
context's digest, an unchanged context keeps it (nothing changes), `never` keeps the previous build, and a missing
or forged context is a 422 naming the service, with nothing stored."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import time
from typing import Any

from fastapi.testclient import TestClient

from corral.model.build_log import MASK, MAX_LOG_LINES, cut_marker, secret_values
from corral.model.builds import BuildRecord
from corral.server.hub.builds import KEEP_BUILDS, Build, BuildCoordinator
from corral.server.services.stack_builds import previous_records
from tests.security.conftest import add_user

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


def _stack_and_record(api: TestClient, name: str, dockerfile: str) -> tuple[str, BuildRecord]:
    data = context(dockerfile)
    digest = hashlib.sha256(data).hexdigest()
    body = {"name": name, "compose": COMPOSE, "build_contexts": {digest: base64.b64encode(data).decode()},
            "build_context_of": {"web": digest}}  # fmt: skip
    result = api.put("/v1/stacks", json=body)
    assert result.status_code in (200, 201), result.text
    stack_id = result.json()["id"]
    store = api.app.state.stacks  # type: ignore[attr-defined]
    return stack_id, previous_records(store.stack_files(stack_id))["web"]


def _finished_build(api: TestClient, stack_id: str, record: BuildRecord, lines: int, secret: str) -> Build:
    """A build as the coordinator keeps it once it ended: masked while logged, then kept (on disk too)."""
    coordinator: BuildCoordinator = api.app.state.builds  # type: ignore[attr-defined]
    build = Build(record.image, "x86_64", stack_id, "web", record, host="h1", state="building", started=time.time())
    build.log.secrets = secret_values(record.spec.args, [secret])
    coordinator.history[build.id] = build
    build.add("\n".join(f"line {i}" for i in range(lines)))
    build.add(f"Step 2/3 : RUN echo {secret}")
    build.state, build.finished = "built", time.time()
    coordinator._keep(build)
    return build


def test_a_build_log_reads_in_pages_from_its_first_kept_line_and_never_shows_a_secret(api: TestClient) -> None:
    stack_id, record = _stack_and_record(api, "logs", "FROM corral/busybox\n")
    build = _finished_build(api, stack_id, record, MAX_LOG_LINES + 9, "hunter2-token")

    listed = api.get(f"/v1/stacks/{stack_id}/builds")
    assert listed.status_code == 200, listed.text
    (summary,) = listed.json()["data"]
    assert summary["id"] == build.id and summary["state"] == "built" and summary["host"] == "h1"
    assert summary["digest"] == record.context_digest and summary["finished"] >= summary["started"] > 0
    assert summary["lines"] == MAX_LOG_LINES + 10 and summary["cut"] == 10 and "log" not in summary

    path = f"/v1/stacks/{stack_id}/builds/{build.id}/log"
    first = api.get(path, params={"offset": 0, "limit": 100}).json()
    assert first["offset"] == 10 and first["log"][0] == "line 10" and first["next_offset"] == 110
    assert first["cut"] == 10 and first["done"] is False
    last = api.get(path, params={"offset": MAX_LOG_LINES, "limit": 100}).json()
    assert last["log"][-1] == f"Step 2/3 : RUN echo {MASK}" and last["done"] is True
    assert api.get(path, params={"offset": 10**6}).json()["log"] == []

    followed = api.get(path, params={"follow": "true", "offset": 0})
    assert followed.status_code == 200 and followed.headers["content-type"].startswith("text/plain")
    text = followed.text
    assert text.startswith(cut_marker(10) + "\nline 10\n") and text.endswith(f"RUN echo {MASK}\n")
    kept_file = (api.app.state.builds.logs / f"{build.id}.json").read_text()  # type: ignore[attr-defined]
    stack_view = api.get(f"/v1/stacks/{stack_id}").text
    assert not any("hunter2-token" in t for t in (listed.text, str(first), text, kept_file, stack_view))

    for bad in ({"limit": 0}, {"limit": 10**6}, {"offset": -1}, {"offset": "x"}):
        refused = api.get(path, params=bad)
        assert refused.status_code == 422, (bad, refused.text)


def test_unknown_builds_stacks_and_another_stacks_build_are_404(api: TestClient) -> None:
    stack_id, record = _stack_and_record(api, "one", "FROM corral/busybox\n")
    other_id, _ = _stack_and_record(api, "two", "FROM corral/busybox\nCMD true\n")
    build = _finished_build(api, stack_id, record, 3, "not-this")
    assert api.get(f"/v1/stacks/{stack_id}/builds/nope/log").status_code == 404
    assert api.get(f"/v1/stacks/{other_id}/builds/{build.id}/log").status_code == 404
    assert api.get("/v1/stacks/nope/builds").status_code == 404
    assert api.get(f"/v1/stacks/nope/builds/{build.id}/log").status_code == 404
    assert api.get(f"/v1/stacks/{other_id}/builds").json()["data"] == []


def test_a_read_only_member_reads_build_logs_a_stranger_sees_nothing(api: TestClient) -> None:
    stack_id, record = _stack_and_record(api, "seen", "FROM corral/busybox\n")
    build = _finished_build(api, stack_id, record, 3, "not-this")
    assert api.post("/v1/environments", json={"name": "other"}).status_code == 201
    viewer = add_user(api, "viewer", "default", "read-only")
    stranger = add_user(api, "stranger", "other", "owner")
    path = f"/v1/stacks/{stack_id}/builds/{build.id}/log"
    assert api.get(path, headers=viewer).json()["log"] == ["line 0", "line 1", "line 2", f"Step 2/3 : RUN echo {MASK}"]
    assert api.get(f"/v1/stacks/{stack_id}/builds", headers=viewer).status_code == 200
    assert api.get(path, headers=stranger).status_code == 404
    assert api.get(f"/v1/stacks/{stack_id}/builds", headers=stranger).status_code == 404


def test_kept_builds_come_back_after_a_restart_and_the_oldest_are_dropped(api: TestClient) -> None:
    stack_id, record = _stack_and_record(api, "kept", "FROM corral/busybox\n")
    builds = [_finished_build(api, stack_id, record, 1, "not-this") for _ in range(KEEP_BUILDS + 2)]
    for index, build in enumerate(builds):
        build.created = 1000.0 + index
    coordinator: BuildCoordinator = api.app.state.builds  # type: ignore[attr-defined]
    coordinator.prune()
    kept = [b["id"] for b in api.get(f"/v1/stacks/{stack_id}/builds").json()["data"]]
    assert kept == [b.id for b in reversed(builds[-KEEP_BUILDS:])]
    again = BuildCoordinator(coordinator.hub, coordinator.reads, coordinator.logs.parent.parent)
    again.load_history()
    assert sorted(again.history) == sorted(kept)  # from disk, as a restarted server reads them
    coordinator.prune([])  # the stack is gone: its builds go
    assert coordinator.history == {} and list(coordinator.logs.iterdir()) == []
