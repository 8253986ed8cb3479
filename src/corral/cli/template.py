"""`--format '{{.name}} {{.state}}'`: a tiny field-selection template, the part of Go templates people type after
`docker ps --format`.

Why not Go templates or Jinja: a format string comes from the command line and is applied to server data; a
language with calls, loops or attribute access beyond plain keys is more than a field selection needs and more
than anyone should have to audit. Only `{{.field}}` and `{{.a.b}}` (keys of the JSON object the `json` format
prints), `{{.}}` (the whole record) and `\\t` / `\\n` escapes; a leading `table ` aligns the output in columns
with a header, as `docker ps --format 'table {{.Names}}\\t{{.Status}}'` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from corral.model.errors import InvalidInput

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"\s*\.((?:[A-Za-z_][\w-]*)(?:\.[A-Za-z_][\w-]*)*)?\s*")
_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\\\": "\\"}


@dataclass(frozen=True)
class Template:
    """A parsed format: literal text and field paths, alternating (`parts[0]` text, `parts[1]` a path, ...)."""

    source: str
    parts: tuple[str | tuple[str, ...], ...]
    table: bool = False

    def render(self, record: Any) -> str:
        """The line for one record; a field it does not have raises InvalidInput naming the fields it has."""
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else _text(_lookup(record, part)))
        return "".join(out)

    def header(self) -> str:
        """The `table` header: each field's last key in capitals (`{{.a.b}}` -> `B`)."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(part[-1].upper() if part else "RECORD")
        return "".join(out)

    def lines(self, records: list[Any]) -> list[str]:
        """The output lines for records: one each, or aligned columns under a header for a `table` format."""
        rendered = [self.render(record) for record in records]
        if not self.table:
            return rendered
        return align([self.header(), *rendered])


def parse(source: str) -> Template:
    """The template of a `--format` value; InvalidInput (field `format`) for anything but `{{.a.b}}` fields."""
    text = source
    table = False
    if text.startswith("table ") or text == "table":
        table, text = True, text[len("table") :].lstrip(" ")
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _ACTION.finditer(text):
        path = _PATH.fullmatch(match.group(1))
        if path is None:
            raise InvalidInput(
                f"--format: {match.group(0)!r} is not a field: use {{{{.field}}}} or {{{{.a.b}}}} (or table, json)",
                field="format",
            )
        parts.append(_unescape(text[position : match.start()]))
        parts.append(tuple(path.group(1).split(".")) if path.group(1) else ())
        position = match.end()
    rest = text[position:]
    if "{{" in rest or "}}" in rest:
        raise InvalidInput("--format: unbalanced {{ or }}", field="format")
    parts.append(_unescape(rest))
    return Template(source, tuple(parts), table)


def _unescape(text: str) -> str:
    return re.sub(r"\\[tn\\]", lambda m: _ESCAPES[m.group(0)], text)


def _lookup(record: Any, path: tuple[str, ...]) -> Any:
    value = record
    for depth, key in enumerate(path):
        if not isinstance(value, dict) or key not in value:
            where = "." + ".".join(path[:depth]) if depth else "a record"
            fields = ", ".join(sorted(value)) if isinstance(value, dict) else "none (it is not an object)"
            raise InvalidInput(
                f"--format: no field {'.' + '.'.join(path[: depth + 1])!r}; the fields of {where}: {fields}",
                field="format",
            )
        value = value[key]
    return value


def _text(value: Any) -> str:
    """A value as a line shows it: text as is, nothing for null, JSON for numbers, booleans, lists and objects."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def align(lines: list[str]) -> list[str]:
    """Tab-separated cells padded into columns (the last cell of a line is not padded)."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell))
    return ["   ".join([cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + row[-1:]).rstrip() for row in rows]
