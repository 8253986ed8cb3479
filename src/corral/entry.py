"""The `corral` command: the CLI's client verbs plus the two long-running processes, `server` and `agent`.

Why a module above the layers: the CLI may speak to the server only through the client (import-linter checks it),
yet one executable must also start the server and the agent. This module composes the three and nothing else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from corral.cli import catalog as _catalog_commands  # noqa: F401 - registers `catalog ...`
from corral.cli import catalog_commands as _catalog_more  # noqa: F401 - `catalog ls|show|install|upgrade|...`
from corral.cli import registries as _registry_commands  # noqa: F401 - registers `registries ...`
from corral.cli import stacks as _stack_commands  # noqa: F401 - registers `up`, `ps`, ...
from corral.cli.main import app, fail
from corral.config import load_settings
from corral.model.errors import CorralError
from corral.model.names import parse_label_pairs


@app.command("server")
def server_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run the Corral server (REST API, event stream, agent hub)."""
    from corral.server.run import run_server
    from corral.web import mount_ui

    raise typer.Exit(run_server(host, port, load_settings(), extend=mount_ui))


@app.command("agent")
def agent_command(
    url: Annotated[str, typer.Option(help="Server URL, e.g. http://10.0.0.5:8080.")],
    token: Annotated[str | None, typer.Option(help="Registration token (needed only the first time).")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Where the agent keeps its credentials.")] = None,
    docker_host: Annotated[str, typer.Option(help="Docker engine to drive.")] = "unix:///var/run/docker.sock",
    label: Annotated[list[str] | None, typer.Option(help="Host label KEY=VALUE (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Host name (default: this machine's hostname).")] = None,
) -> None:
    """Run the agent on this host: register once, then stay connected to the server."""
    from corral.agent.run import run_agent

    settings = load_settings()
    try:
        labels = parse_label_pairs(label or [])
    except CorralError as exc:
        fail(exc.message)
    code = run_agent(
        url=url.rstrip("/"),
        token=token,
        state_dir=state_dir or settings.data_dir / "agent",
        docker_host=docker_host,
        labels=labels,
        name=name,
        settings=settings,
    )
    raise typer.Exit(code)


def main() -> None:
    """Run the command; usage errors (unknown flag, missing argument) are one line on stderr and exit code 1."""
    try:
        result = app(prog_name="corral", standalone_mode=False)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as exc:  # click's usage errors, as vendored by typer
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", "corral")
        print(f"error: {message} (see '{command} --help')", file=sys.stderr)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
