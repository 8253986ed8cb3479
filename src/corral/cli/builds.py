"""`corral up` and compose `build:`: pack each context, send it with the stack, then follow the builds' logs.

Why the CLI packs: the context is on the operator's disk (cli/build_context.py packs it as Docker would); the
server builds it on its hosts and shows each build's state and log in the stack's view, which this module prints
as it grows ("web (x86_64) | Step 1/3 : FROM corral/busybox") until every build is done. A failed build ends
`corral up` with exit 1 and the step that failed.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from corral.cli.build_context import pack_contexts
from corral.cli.main import _run
from corral.cli.output import err_console, fail
from corral.model.errors import InvalidInput

POLL_SECONDS = 0.5
APPEAR_SECONDS = 15.0  # builds start when the server's loop takes the request; none after this: no host to build on
DONE = ("built", "failed")


def build_contexts(
    compose_path: Path, compose_text: str, answers: dict[str, str], build: bool | None
) -> tuple[dict[str, str], dict[str, str], str] | None:
    """(contexts by digest as base64, service -> digest, mode) to send, or None when no service builds."""
    from corral.compose.build import build_specs  # here: the verbs that send no project start without the pipeline

    try:
        builds = build_specs(compose_path.name, compose_text, answers=answers)
        if not builds:
            return None
        if build is False:
            return {}, {}, "never"
        packed = pack_contexts(compose_path.resolve().parent, builds)
    except InvalidInput as exc:
        fail(exc.message)
    contexts = {p.digest: base64.b64encode(p.data).decode() for p in packed.values()}
    return contexts, {service: p.digest for service, p in packed.items()}, "force" if build else "auto"


def follow_builds(stack_id: str, timeout: float, before: list[dict[str, Any]]) -> None:
    """Print the builds' new log lines until each is built or failed; exit 1 if one failed. `before`: the builds
    the stack showed when `up` returned; those already built then are not this run's (their log is not shown)."""
    known = {(b["image"], b["arch"]) for b in before if b["state"] == "built"}
    printed: dict[tuple[str, str], int] = {}
    deadline = time.monotonic() + timeout
    appear = time.monotonic() + APPEAR_SECONDS
    while True:
        stack: dict[str, Any] = _run(lambda c: c.stacks.get(stack_id))
        builds = [b for b in stack.get("builds", []) if (b["image"], b["arch"]) not in known]
        every = stack.get("builds", [])
        for build in builds:
            key = (build["service"], build["arch"])
            lines: list[str] = build["log"]
            first = build["lines"] - len(lines)
            start = max(printed.get(key, 0), first)
            for line in lines[start - first :]:
                err_console.print(f"{build['service']} ({build['arch']}) | {line}", highlight=False, markup=False)
            printed[key] = build["lines"]
        if every and all(b["state"] in DONE for b in builds):
            break
        if not every and time.monotonic() > appear:
            err_console.print("[yellow]warning:[/yellow] no build started (no active host to build on yet)")
            return
        if time.monotonic() > deadline:
            fail(
                "the builds did not finish in time: "
                + ", ".join(f"{b['service']} ({b['arch']}) {b['state']}" for b in builds)
            )
        time.sleep(POLL_SECONDS)
    failed = [b for b in builds if b["state"] == "failed"]
    for build in failed:
        err_console.print(
            f"[red]error:[/red] build of {build['service']} for {build['arch']} failed on {build['host']}: "
            f"{escape(build['error'])}",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)
