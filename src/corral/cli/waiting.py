"""Waiting for a change to be done: what `up`, `scale`, `stop`, `start` and `restart` do unless `-d`.

Why: the server applies changes asynchronously (level-triggered passes, agents converging their engines), so a
verb that returned at once would report the old world (the old container still `running` after `up`, `running`
after `stop`). These loops poll what the server observes on the engines until the change is done, show progress
(`output.Progress`), and exit 1 naming what is not done when a reason stops changing or the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import typer

from corral.cli.main import _run
from corral.cli.output import Progress, err_console
from corral.client import CorralClient

STUCK_SECONDS = 20.0  # a reason that has not changed for this long is reported instead of waiting further
POLL_SECONDS = 0.5
FAILED_STATES = ("upgrade-error", "rollback-error")
STOPPED_STATES = ("exited", "stopped", "dead", "lost")


def outdated(stack: dict[str, Any]) -> list[str]:
    """Containers that should run but are not on their service's current configuration yet: the server has not
    re-planned them, or the engine still runs (or shows) the older one."""
    return [c["name"] for s in stack["services"] for c in _outdated_containers(s)]


def _outdated_containers(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for c in service["containers"]
        if c["desired"] == "running"
        and not c.get("retired")
        and (not c.get("up_to_date", True) or c.get("config_hash", "") != service.get("config_hash", ""))
    ]


def health_pending(stack: dict[str, Any]) -> bool:
    """Some container's health check has not decided yet (initializing or reinitializing)."""
    pending = ("initializing", "reinitializing")
    return any(c.get("health") in pending for s in stack["services"] for c in s["containers"])


def stack_reasons(stack: dict[str, Any]) -> tuple[str, ...]:
    found = [f"{stack['name']}/{s['name']}: {s['reason']}" for s in stack["services"] if s["reason"]]
    found += [f"{c['name']}: {c['reason']}" for s in stack["services"] for c in s["containers"] if c["reason"]]
    return tuple(found)


def _report(level: str, headline: str, reasons: Sequence[str]) -> None:
    colour = "red" if level == "error" else "yellow"
    err_console.print(f"[{colour}]{level}:[/{colour}] {headline}", highlight=False)
    for reason in reasons:
        err_console.print(f"  {reason}", highlight=False)


def wait_for_stack(
    stack_id: str, timeout: float, *, until: tuple[str, ...] = ("active",), doing: str = "starting containers"
) -> dict[str, Any]:
    """The stack once it is in a state of `until` with every container on its current configuration; exit 1 when
    it fails, a reason stays the same for STUCK_SECONDS, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last_reasons: tuple[str, ...] = ()
    reasons_since = time.monotonic()
    with Progress(doing) as progress:
        while True:
            stack: dict[str, Any] = _run(lambda c: c.stacks.get(stack_id))
            behind = outdated(stack) if "active" in until else []
            if stack["state"] in until and not behind:
                return stack
            if stack["state"] == "degraded" and "active" in until and not behind and not health_pending(stack):
                _report("warning", f"stack {stack['name']} runs, but is degraded", stack_reasons(stack))
                return stack
            if stack["state"] in FAILED_STATES:
                _report("error", f"stack {stack['name']} is {stack['state']}", stack_reasons(stack))
                raise typer.Exit(1)
            reasons = stack_reasons(stack)
            if reasons != last_reasons:
                last_reasons, reasons_since = reasons, time.monotonic()
            counts = ", ".join(f"{s['name']} {s['running']}/{s['scale']}" for s in stack["services"])
            detail = f"{counts}; updating {', '.join(behind)}" if behind else counts
            progress.update(f"{doing}: {detail}")
            transition = stack["state"] in ("upgrading", "rolling-back")  # the server applies its own deadline
            stuck = reasons and not transition and time.monotonic() - reasons_since > STUCK_SECONDS
            if stuck or time.monotonic() > deadline:
                _report(
                    "error",
                    f"stack {stack['name']} is not done yet: {detail}",
                    reasons or ("containers are still starting",),
                )
                raise typer.Exit(1)
            time.sleep(POLL_SECONDS)


def wait_for_service(service_id: str, timeout: float, *, doing: str) -> dict[str, Any]:
    """The service once its containers match its scale, run its current configuration and none is unplaced."""
    deadline = time.monotonic() + timeout
    last_reason, reason_since = "", time.monotonic()
    with Progress(doing) as progress:
        while True:
            service: dict[str, Any] = _run(lambda c: c.stacks.get_service(service_id))
            current = [c for c in service["containers"] if not c.get("retired")]
            behind = [c["name"] for c in _outdated_containers(service)]
            at_scale = len(current) == service["scale"] and not service.get("unplaced")
            if service["state"] in ("active", "inactive", "degraded") and at_scale and not behind:
                return service
            reason = service["reason"]
            if reason != last_reason:
                last_reason, reason_since = reason, time.monotonic()
            detail = f"{service['running']}/{service['scale']} running"
            progress.update(f"{doing}: {detail}")
            stuck = reason and time.monotonic() - reason_since > STUCK_SECONDS
            if stuck or time.monotonic() > deadline:
                name = f"{service['stack']}/{service['name']}"
                _report("error", f"{name} is not done yet: {detail}", [reason or "containers are still changing"])
                raise typer.Exit(1)
            time.sleep(POLL_SECONDS)


Check = Callable[[dict[str, Any]], bool]


def _describe(container: dict[str, Any]) -> str:
    exit_code = container["exit_code"] if container["state"] == "exited" else None
    code = f" ({exit_code})" if exit_code is not None else ""
    reason = f": {container['reason']}" if container["reason"] else ""
    return f"{container['name']} {container['state']}{code}{reason}"


def wait_for_containers(
    containers: list[dict[str, Any]], done: Check, timeout: float, *, doing: str, failed: Check | None = None
) -> list[dict[str, Any]]:
    """Poll each container until `done(container)` holds for all (their last views); exit 1 naming the others when
    one has `failed` or the deadline passes."""
    deadline = time.monotonic() + timeout
    pending = {c["id"]: c for c in containers}
    finished: dict[str, dict[str, Any]] = {}
    with Progress(doing) as progress:
        while pending:
            for container in _run(lambda client: _latest(client, list(pending))):
                if done(container):
                    pending.pop(container["id"], None)
                    finished[container["id"]] = container
                else:
                    pending[container["id"]] = container
            if not pending:
                break
            progress.update(f"{doing}: " + ", ".join(f"{c['name']} {c['state']}" for c in pending.values()))
            broken = [c for c in pending.values() if failed is not None and failed(c)]
            if broken or time.monotonic() > deadline:
                headline = "failed" if broken else f"gave up after {timeout:g} s"
                _report("error", f"{doing}: {headline}", [_describe(c) for c in broken or pending.values()])
                raise typer.Exit(1)
            time.sleep(POLL_SECONDS)
    return [finished[c["id"]] for c in containers]


def _latest(client: CorralClient, container_ids: list[str]) -> list[dict[str, Any]]:
    return [client.stacks.get_container(container_id) for container_id in container_ids]


def stopped(container: dict[str, Any]) -> bool:
    return bool(container["state"] in STOPPED_STATES)


def started_after(previous: dict[str, float]) -> Check:
    """Running again, after a start or restart asked for after `previous` (container id -> start_requested_at)."""

    def check(container: dict[str, Any]) -> bool:
        asked = float(container.get("start_requested_at") or 0.0)
        return bool(container["state"] == "running" and asked > previous.get(container["id"], 0.0))

    return check


def ended_after(previous: dict[str, float]) -> Check:
    """Exited or dead after a start asked for after `previous`: the start failed (the server shows `starting` for a
    while after the request, so a container that has not been started yet is not taken for a failed one)."""

    def check(container: dict[str, Any]) -> bool:
        asked = float(container.get("start_requested_at") or 0.0)
        return bool(container["state"] in ("exited", "dead") and asked > previous.get(container["id"], 0.0))

    return check


def running(container: dict[str, Any]) -> bool:
    return bool(container["state"] == "running")
