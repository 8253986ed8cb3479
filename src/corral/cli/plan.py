"""`corral up --plan`: print what the server would do for this `up` (server/routes/api_plan.py), as `nomad job plan`
does.

Why its own module: the preview has three parts (services with their changed fields, containers with index and
host, indexes that cannot be placed) that read best as short sections, not as one table; `--format json` prints
the server's answer as it is.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from corral.cli.output import Format, console, print_json, print_table

_SIGNS = {"create": "+", "change": "~", "remove": "-", "unchanged": "=", "recreate": "~"}


def print_plan(preview: dict[str, Any], output: Format) -> None:
    if output is Format.json:
        return print_json(preview)
    verb = "create stack" if preview["create"] else "update stack"
    console.print(f"[bold]{verb} {escape(preview['stack'])}[/bold] in {escape(preview['environment'])}")
    for warning in preview.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    console.print()
    console.print("[bold]Services[/bold]")
    for service in preview["services"]:
        sign = _SIGNS[service["action"]]
        note = f"  ({escape(service['note'])})" if service.get("note") else ""
        console.print(f"  {sign} {escape(service['name'])}: {service['action']}{note}", highlight=False)
        for change in service["changes"]:
            old, new = _value(change["old"]), _value(change["new"])
            console.print(f"      {escape(change['field'])}: {escape(old)} -> {escape(new)}", highlight=False)
    console.print()
    if preview["containers"]:
        rows = [
            (
                f"{_SIGNS[c['action']]} {c['action']}",
                c["name"],
                c["host"] + (f" (from {c['from_host']})" if c.get("from_host") else ""),
                c.get("reason", ""),
            )
            for c in preview["containers"]
        ]
        print_table(["ACTION", "CONTAINER", "HOST", "WHY"], rows)
    else:
        console.print("No container to create, recreate or remove.")
    if preview["unplaced"]:
        console.print()
        console.print("[bold red]Cannot be placed[/bold red]")
        for item in preview["unplaced"]:
            console.print(f"  {escape(item['service'])} {escape(item['reason'])}", highlight=False)
    if not preview["changes"]:
        console.print("Nothing to change: the stack is as these files describe it.")


def _value(value: str | None) -> str:
    return "(none)" if value is None else (value or '""')
