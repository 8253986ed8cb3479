"""`corral completion bash|zsh|fish`: the shell completion script, as `docker completion` and `kubectl completion`
print theirs.

Why through typer's completion classes: the script calls `corral` back with `_CORRAL_COMPLETE` set (Click's
completion protocol), so every command, option and choice completes from the same command tree the help shows;
registering the classes here makes that protocol answer even though the app hides typer's `--install-completion`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from typer._completion_classes import completion_init  # typer exports no public way to register them
from typer._completion_shared import get_completion_script

from corral.cli.main import app

PROG_NAME = "corral"
COMPLETE_VAR = "_CORRAL_COMPLETE"

completion_init()


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command("completion")
def completion(shell: Annotated[Shell, typer.Argument(help="The shell to complete in.")]) -> None:
    """Print the shell completion script: `source <(corral completion bash)` in ~/.bashrc, or save it as
    corral.fish in ~/.config/fish/completions."""
    typer.echo(get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value))
