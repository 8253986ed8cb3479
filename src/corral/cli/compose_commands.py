"""`corral config` (the canonical model of a compose project, as `docker compose config --format json` prints it)
and `corral export STACK` (a stack's compose files back on disk).

Why `config` runs the pipeline locally: it shows exactly what `corral up` would send and the server would run,
without a server; every error of the files is reported at once, with the same messages `up` gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.main import EnvOption, _env, _run, app
from corral.cli.output import err_console, fail
from corral.cli.project import load_project
from corral.model.errors import InvalidInput

FileOption = Annotated[
    list[Path] | None, typer.Option("-f", "--file", help="Compose file, then rancher-compose.yml (default: found).")
]
ProfileOption = Annotated[
    list[str] | None, typer.Option("--profile", help="Enable services of this Compose profile (repeatable).")
]


def warn(warnings: list[str]) -> None:
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command("config")
def config(
    file: FileOption = None,
    stack: Annotated[str | None, typer.Option("-s", "--stack", help="Stack name (default: as Compose does).")] = None,
    answers: Annotated[Path | None, typer.Option("-e", "--answers", help="Answers file (KEY=VALUE lines).")] = None,
    profile: ProfileOption = None,
    services: Annotated[bool, typer.Option("--services", help="Print the service names only.")] = False,
) -> None:
    """Print the compose project's canonical model (JSON, as `docker compose config --format json`)."""
    from corral.compose import ComposeFile, load_stack  # here: the other verbs start without the pipeline
    from corral.compose.canonical import canonical_model

    try:
        project = load_project(list(file or []), stack=stack, answers_file=answers, profiles=profile)
        rancher = (
            ComposeFile(project.rancher_path.name, project.rancher_text)
            if project.rancher_path is not None and project.rancher_text is not None
            else None
        )
        spec = load_stack(
            project.name,
            ComposeFile(project.compose_path.name, project.compose_text, project.base_dir),
            rancher,
            answers=project.variables,
            env_files=project.env_files,
            profiles=frozenset(project.profiles),
        )
    except InvalidInput as exc:
        fail(exc.message)
    warn(list(spec.warnings))
    if services:
        for service in spec.services:
            typer.echo(service.name)
        return
    typer.echo(json.dumps(canonical_model(spec), indent=2))


@app.command("export")
def export(
    stack: Annotated[str, typer.Argument(help="Stack name or id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write the files into.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    env: EnvOption = None,
) -> None:
    """Write a stack's compose and rancher-compose files (and its answers) as last applied."""
    result = _run(lambda c: c.stacks.files(c.stacks.find(_env(env), stack)["id"]))
    files: dict[str, str] = dict(result["files"])
    if result.get("answers"):
        files["answers.txt"] = "".join(f"{k}={v}\n" for k, v in sorted(result["answers"].items()))
    targets = {output / Path(name).name: text for name, text in files.items()}
    existing = sorted(str(p) for p in targets if p.exists())
    if existing and not force:
        fail(f"{', '.join(existing)} exist already: give --force to overwrite, or -o another folder")
    output.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text)
        err_console.print(f"wrote {path}", highlight=False)
    warn(list(result.get("warnings", [])))
    if result.get("profiles"):
        err_console.print(f"profiles: {','.join(result['profiles'])} (give them to `corral up --profile`)")
