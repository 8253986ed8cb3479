"""Every command's help fits 80 columns with readable value names (issue 18); `corral --version` answers."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest

from corral.cli.help import all_commands, build
from corral.entry import app

WIDTH = 80
PYTHON_TYPE = re.compile(r"<(str|int|float|bool|path|Path|list\[|tuple|uuid|datetime|[a-z]+ range)")
COMMANDS = list(all_commands(build(app)))


def _help(path: tuple[str, ...], command: Any) -> str:
    parent = None
    root = COMMANDS[0][1]
    node = root
    names = ("corral", *path)
    for depth, name in enumerate(names):
        node = root if depth == 0 else node.commands[name]
        parent = node.context_class(node, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    assert node is command
    return str(command.get_help(parent))


def test_every_command_is_covered() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "up", "ps", "scale", "stop", "env create", "hosts ls", "server", "agent"} <= paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "corral" for p, _ in COMMANDS])
def test_help_fits_80_columns_uncut_with_readable_metavars(path: tuple[str, ...], command: Any) -> None:
    text = _help(path, command)
    assert text.startswith("Usage: corral")
    for line in text.splitlines():
        assert len(line) <= WIDTH, f"{' '.join(path)}: {line!r} is {len(line)} columns"
        cut = "…" in line or (not line.startswith("Usage:") and re.search(r"\w\.\.\.$", line))
        assert not cut, f"{' '.join(path)}: cut: {line!r}"
        assert not PYTHON_TYPE.search(line), f"{' '.join(path)}: a Python type as metavar: {line!r}"


def test_version_prints_the_package_version() -> None:
    result = subprocess.run([sys.executable, "-m", "corral", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"corral {version('corral')}"
