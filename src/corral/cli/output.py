"""Rendering for the CLI: Rich tables for people, `--format json` for scripts, one line on error.

Why: every command prints through these helpers so that all of them behave the same way.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.template import Template
from corral.cli.template import parse as parse_template
from corral.model.errors import InvalidInput

# Piped output (scripts, `| grep`, logs) keeps whole names and ids instead of Rich's 80-column ellipses.
console = Console() if sys.stdout.isatty() else Console(width=250)
err_console = Console(stderr=True)

STATE_STYLES = {
    "active": "green",
    "running": "green",
    "reconnecting": "yellow",
    "registering": "yellow",
    "pending": "yellow",
    "provisioning": "yellow",
    "removing": "yellow",
    "stopping": "yellow",
    "starting": "yellow",
    "unplaced": "red",
    "disconnected": "red",
    "engine-down": "red",
    "unknown": "yellow",
    "error": "red",
    "healthy": "green",
    "unhealthy": "red",
    "degraded": "yellow",
}


class Format(StrEnum):
    table = "table"
    json = "json"


@dataclass(frozen=True)
class Output:
    """What `--format` asked for: a table, JSON, or a field selection (`template`)."""

    format: Format
    template: Template | None = None

    @property
    def is_table(self) -> bool:
        """The command prints its own table (else `show` prints JSON or the template's lines)."""
        return self.format is Format.table and self.template is None


TABLE = Output(Format.table)
JSON = Output(Format.json)


def parse_format(value: str | Output) -> Output:
    """`table`, `json`, or a template such as `{{.name}} {{.state}}` (cli/template.py); a bad one is a usage error."""
    if isinstance(value, Output):
        return value
    if value in ("table", "json"):
        return Output(Format(value))
    if "{{" not in value:
        raise typer.BadParameter(f"{value!r}: give table, json or a template such as '{{{{.name}}}} {{{{.state}}}}'")
    try:
        return Output(Format.table, parse_template(value))
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message.removeprefix("--format: ")) from None


def show(value: Any, output: Output, table: Callable[[], None] | None = None) -> None:
    """Print a command's result in the chosen format: `value` (a record or a list of records) as JSON, one line
    per record from a template, or the command's `table` (JSON when the command has no table, as `inspect`)."""
    if output.template is not None:
        records = value if isinstance(value, list) else [value]
        try:
            lines = output.template.lines(records)
        except InvalidInput as exc:
            fail(exc.message)
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    if output.format is Format.json or table is None:
        return print_json(value)
    table()


def fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def styled_state(state: str) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table, highlight=False)


class Progress:
    """What a wait is doing, on stderr: a Rich spinner on a terminal, one plain line per change when piped (so logs
    and CI show the progress without control characters)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._live = err_console.is_terminal
        self._status: Any = None

    def __enter__(self) -> Progress:
        if self._live:
            self._status = err_console.status(self._text)
            self._status.__enter__()
        else:
            self._plain(self._text)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def update(self, text: str) -> None:
        if text == self._text:
            return
        self._text = text
        if self._status is not None:
            self._status.update(text)
        else:
            self._plain(text)

    @staticmethod
    def _plain(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def wait_for(describe: str, check: Callable[[], tuple[bool, str]], *, timeout: float, interval: float = 0.5) -> None:
    """Poll `check` until it returns (True, _) or the deadline passes; show progress on stderr."""
    deadline = time.monotonic() + timeout
    with Progress(describe) as progress:
        while True:
            done, detail = check()
            if done:
                return
            if time.monotonic() > deadline:
                fail(f"{describe}: gave up after {timeout:g} s ({detail})")
            progress.update(f"{describe} ({detail})")
            time.sleep(interval)
