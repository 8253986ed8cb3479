"""`corral up` with `build:` services: the contexts it sent, the images they name, and the builds in a stack's view.

Why apart from api_stacks.py: the routes stay about stacks; this module turns a request's contexts into stored,
content-addressed contexts and `BuildRecord`s (compose/build.py names the images), hands them to the build
coordinator (server/hub/builds.py), and adds each build's state and log tail to the stack's view, a failed build's
reason (the Dockerfile step) on its service.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from typing import Any

from corral.compose.build import attach_builds, build_specs
from corral.model.builds import MAX_CONTEXT_BYTES, MAX_CONTEXTS_BYTES, BuildRecord, check_context_digest
from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec
from corral.server.hub.builds import BuildCoordinator

BUILD_MODES = ("auto", "force", "never")
VIEW_LOG_LINES = 400


def previous_records(files: Mapping[str, Any]) -> dict[str, BuildRecord]:
    stored = files.get("builds")
    if not isinstance(stored, dict):
        return {}
    return {str(k): BuildRecord.from_dict(v) for k, v in stored.items() if isinstance(v, dict)}


def earlier_records(files: Mapping[str, Any]) -> dict[str, BuildRecord]:
    """Each service's build before its current one (`files["builds_previous"]`), kept for a rollback."""
    stored = files.get("builds_previous")
    if not isinstance(stored, dict):
        return {}
    return {str(k): BuildRecord.from_dict(v) for k, v in stored.items() if isinstance(v, dict)}


def kept_records(files: Mapping[str, Any]) -> list[BuildRecord]:
    """The builds whose images and files the cleanup keeps (orchestrator/build_cleanup.py): current and previous."""
    return [*previous_records(files).values(), *earlier_records(files).values()]


def with_builds(
    coordinator: BuildCoordinator | None,
    spec: StackSpec,
    files: dict[str, Any],
    *,
    compose_name: str,
    compose_text: str,
    answers: Mapping[str, str],
    contexts: Mapping[str, str] | None,
    context_of: Mapping[str, str],
    mode: str,
    previous: Mapping[str, BuildRecord],
    earlier: Mapping[str, BuildRecord] | None = None,
) -> tuple[StackSpec, dict[str, BuildRecord]]:
    """The spec with built images named, and the records (also written to `files["builds"]`, and the build each
    replaced to `files["builds_previous"]`); InvalidInput for a bad context, a digest that does not match, or a
    context missing. `previous`: the stack's current records, `earlier`: the ones they replaced."""
    if mode not in BUILD_MODES:
        raise InvalidInput(f"build must be one of {', '.join(BUILD_MODES)}", field="build")
    builds = build_specs(compose_name, compose_text, answers=answers)
    if not builds:
        return spec, {}
    if coordinator is None:
        raise InvalidInput("this server does not build images", field="build")
    digests: dict[str, str] = {}
    if mode != "never":
        total = 0
        stored: dict[str, str] = {}
        for digest, text in (contexts or {}).items():
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidInput(f"build context {digest[:12]} is not base64", field="build_contexts") from exc
            if len(data) > MAX_CONTEXT_BYTES:
                raise InvalidInput(
                    f"a build context holds {len(data)} bytes, at most {MAX_CONTEXT_BYTES}", field="build_contexts"
                )
            total += len(data)
            if total > MAX_CONTEXTS_BYTES:
                raise InvalidInput(
                    f"the build contexts hold more than {MAX_CONTEXTS_BYTES} bytes", field="build_contexts"
                )
            stored[check_context_digest(digest)] = coordinator.store_context(data)
            if stored[digest] != digest:
                raise InvalidInput(
                    f"build context {digest[:12]}: its bytes have another digest", field="build_contexts"
                )
        for service in builds:
            digest = context_of.get(service, "")
            if digest and (digest in stored or coordinator.has_context(digest)):
                digests[service] = digest
    spec, records = attach_builds(
        spec, builds, digests, previous=previous, mode=mode, nonce=secrets.token_hex(8) if mode == "force" else ""
    )
    files["builds"] = {name: record.to_dict() for name, record in records.items()}
    replaced: dict[str, BuildRecord] = {}
    for name, record in records.items():
        old = previous.get(name)
        if old is not None and old.image != record.image:
            replaced[name] = old
        elif name in (earlier or {}):
            replaced[name] = (earlier or {})[name]
    files["builds_previous"] = {name: record.to_dict() for name, record in replaced.items()}
    return spec, records


def request_builds(
    coordinator: BuildCoordinator | None, environment_id: str, stack_id: str, records: dict[str, BuildRecord]
) -> None:
    if coordinator is not None and records:
        coordinator.request(environment_id, stack_id, records)


def add_builds(coordinator: BuildCoordinator | None, view: dict[str, Any]) -> dict[str, Any]:
    """The stack's view with `builds` (state, host, error and the log's last lines per image and architecture);
    a service whose build failed shows `error` with the reason."""
    if coordinator is None:
        return view
    images = {service.get("image", "") for service in view.get("services", [])}
    builds = [b for b in coordinator.of_stack(view["id"]) if b["image"] in images]
    for build in builds:
        build["log"] = build["log"][-VIEW_LOG_LINES:]
    view["builds"] = builds
    for service in view.get("services", []):
        failure = coordinator.failure_of(service.get("image", ""))
        if failure:
            service["state"] = "error"
            service["reason"] = "; ".join(r for r in (failure, service.get("reason", "")) if r)
            view["state"] = "error"
    return view
