"""`corral events`: what happened, from the server's kept history (oldest first, like `docker events --since`).

Why a module of its own: other groups register beside it; it only reads `GET /v1/events` through the client.
`-f` then follows the live stream from the version the history answered at (client/events.py): a dropped connection
or a server restart neither loses nor repeats an event; when the server no longer keeps what was missed, a warning
says so and following goes on from the server's newest event.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, FormatOption, _context, _run, app, fail
from corral.cli.output import Format, print_json, print_table
from corral.client.events import EventsGone, follow_events
from corral.model.errors import CorralError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: float) -> float:
    """`10m`, `2h`, `1d` ago, an ISO 8601 time, or UNIX seconds."""
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", value.strip()):
        return now - float(match.group(1)) * UNITS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {value!r}: give a duration (30s, 10m, 2h, 1d), an ISO time or UNIX seconds")
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _what(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    name = data.get("name") or event.get("id") or ""
    details = [f"{k}={data[k]}" for k in ("state", "scale", "reason") if data.get(k) not in (None, "")]
    return " ".join([str(name), *details])


@app.command("events")
def events(
    since: Annotated[str | None, typer.Option(help="Only events after this (10m, 2h, ISO time).")] = None,
    resource_type: Annotated[
        str | None, typer.Option("--type", help="Only this resource type (host, stack, service, container, ...).")
    ] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=10_000, help="At most this many.")] = 100,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Then print new events as they happen.")] = False,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """List the events the server kept, oldest first (and with -f, follow the new ones)."""
    after = parse_since(since, time.time()) if since else None
    found: list[dict[str, Any]] = []
    cursor: int | None = None
    version: int | None = None
    while len(found) < limit:
        page = _run(
            lambda c, before=cursor, size=min(500, limit - len(found)): c.events(
                env, since=after, resource_type=resource_type, before=before, limit=size
            )
        )
        version = page.get("version") if version is None else version
        found.extend(page["data"])
        cursor = page["next"]
        if cursor is None:
            break
    found.reverse()
    if follow:
        newest = max([int(version or 0), *(int(e.get("version") or 0) for e in found)])
        return _follow(found, newest, env, resource_type, output)
    if output is Format.json:
        return print_json(found)
    rows = [[iso(e["time"]), e["resource_type"], e["action"], _what(e)] for e in found]
    print_table(["TIME", "TYPE", "ACTION", "WHAT"], rows)


def _line(event: dict[str, Any], output: Format) -> str:
    if output is Format.json:
        return json.dumps(event, separators=(",", ":"))
    return "  ".join([iso(event["time"]), event["resource_type"], event["action"], _what(event)])


def _follow(
    history: list[dict[str, Any]], version: int, env: str | None, resource_type: str | None, output: Format
) -> None:
    """Print the history, then each new event as one line (JSON lines with -o json) until interrupted."""
    for event in history:
        typer.echo(_line(event, output))
    try:
        with _context.client() as client:
            while True:
                try:
                    for event in follow_events(client, env, since_version=version):
                        version = max(version, int(event.get("version") or 0))
                        if event.get("type") != "resource.change":
                            continue
                        if resource_type and event.get("resource_type") != resource_type:
                            continue
                        typer.echo(_line(event, output))
                except EventsGone as exc:
                    print(f"warning: events were lost ({exc.message}); following from now", file=sys.stderr)
                    version = exc.version or int(client.events(env, limit=1).get("version") or 0)
    except CorralError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        return
