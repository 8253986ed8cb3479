"""`corral pull STACK [SERVICE...]`: the hosts pull a stack's images now (`docker compose pull`,
`rancher-compose pull`), so that a later `up` or upgrade does not wait for registries.

Why one line per host and image: a pull is done per engine, and what an operator needs is which host has which
image now and, when a pull failed, the engine's reason on that host. Exit code 1 when any pull failed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, FormatOption, _env, _run, app
from corral.cli.output import Format, console, err_console, print_json, print_table


def _detail(result: dict[str, Any]) -> str:
    if result["status"] in ("pulled", "present"):
        return str(result["id"] or "")
    return str(result["reason"] or "")


@app.command("pull")
def pull(
    stack: Annotated[str, typer.Argument(help="Stack name or id.")],
    services: Annotated[list[str] | None, typer.Argument(help="Only these services (default: all).")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the pulls that failed.")] = False,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """Pull the images of a stack's services on the hosts they run on (or may run on) and wait for every host:
    pulled, present (already up to date), failed (with the engine's reason) or skipped (host not connected).
    Nothing is created or restarted."""
    found = _run(lambda c: c.stacks.find(_env(env), stack))
    answer = _run(lambda c: c.stacks.pull(found["id"], list(services or []) or None))
    results: list[dict[str, Any]] = answer["results"]
    if output is Format.json:
        print_json(answer)
    else:
        shown = [r for r in results if r["status"] == "failed"] if quiet else results
        rows = [[r["host"], r["service"], r["image"], r["status"], _detail(r)] for r in shown]
        if console.is_terminal and not quiet:
            print_table(["HOST", "SERVICE", "IMAGE", "STATUS", "DETAIL"], rows)
        else:
            for row in rows:
                typer.echo("  ".join(cell for cell in row if cell))
        if not quiet:
            for note in answer["notes"]:
                err_console.print(f"{note['service']}: skipped, {note['note']}", highlight=False)
    if any(r["status"] == "failed" for r in results):
        raise typer.Exit(1)
