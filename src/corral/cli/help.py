"""Help that reads like `docker --help` at any width: plain wrapped text and value names (`--file FILE`,
`--timeout SECONDS`, `--format [table|json]`) instead of Python types (`<list[Path]>`) and cut-off panels.

Why a pass over the built command tree: every CLI group (ours and the ones other modules register) gets the same
treatment without each option spelling a metavar, and a test can render every command's help from the same tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

SECONDS_WORDS = ("timeout", "seconds", "grace", "since", "until")


def option_metavar(option: Any) -> str:
    """A readable value name for an option that takes a value (typer's parameters describe their Python type)."""
    described = option.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices or ()) + "]"
    words = max(option.opts, key=len).lstrip("-")
    kind = option.bare_type().removeprefix("list[").removesuffix("]")
    if described.is_path or kind == "Path":
        return "DIR" if words.endswith("dir") else "FILE"
    if kind == "int":
        return "N"
    if kind == "float":
        return "SECONDS" if any(word in words for word in SECONDS_WORDS) else "NUMBER"
    return str(words.upper().replace("-", "_"))


def _commands(command: Any) -> Iterator[Any]:
    yield command
    for sub in getattr(command, "commands", {}).values():  # typer vendors click: duck-type its groups
        yield from _commands(sub)


def _no_type(ctx: Any) -> str:
    return ""


def summary(text: str) -> str:
    """The first sentence of a help text, whole (click would cut it at 45 characters with "...")."""
    first = " ".join(text.split("\n\n")[0].split())
    for end in (". ", "; "):
        if end in first:
            first = first.split(end)[0] + "."
    return first


def readable(command: Any) -> Any:
    """Give every option and argument of the tree a readable metavar (an explicit one stays), and every command a
    whole first sentence as its line in its group's list."""
    for each in _commands(command):
        if not each.short_help and each.help:
            each.short_help = summary(each.help)
        for param in each.params:
            if param.metavar is not None or not hasattr(param, "type_descriptor"):
                continue
            if param.param_type_name == "option":
                if not param.is_flag and not param.count:
                    param.metavar = option_metavar(param)
            elif param.param_type_name == "argument":
                param.metavar = (param.name or "value").upper()
        for param in each.params:
            if param.param_type_name == "argument" and hasattr(param, "display_type_rich"):
                param.display_type_rich = _no_type  # the name says it: no "<list[str]>" after it
    return command


def build(app: typer.Typer) -> Any:
    """The click command of the app, with readable metavars."""
    return readable(typer.main.get_command(app))


def all_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) for the root and every group and command below it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from all_commands(sub, (*path, name))
