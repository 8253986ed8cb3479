"""Commands for environment secrets: `corral secrets create|ls|rm`.

Why the value comes from a file or standard input, never a flag: a flag's value is visible to every user of the
machine in `ps` and lands in shell history (`docker secret create NAME FILE|-` works the same way). No command
prints a value: the server never returns one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corral.cli.main import EnvOption, OutputOption, _env, _run, app
from corral.cli.output import TABLE, fail, print_table, show
from corral.model.files import MAX_SECRET_BYTES

secrets_app = typer.Typer(no_args_is_help=True, help="Secrets of an environment, mounted at /run/secrets/NAME.")
app.add_typer(secrets_app, name="secrets")


def _value(source: str) -> str:
    try:
        data = sys.stdin.buffer.read(MAX_SECRET_BYTES + 1) if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")
    if len(data) > MAX_SECRET_BYTES:
        fail(f"a secret holds at most {MAX_SECRET_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        fail(f"{source}: a secret must be UTF-8 text")


@secrets_app.command("create")
def secrets_create(
    name: Annotated[str, typer.Argument(help="Secret name (letters, digits, '_', '.', '-').")],
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="File holding the value, or - for standard input.")],
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Create a secret; services that name it in compose `secrets:` read it at /run/secrets/NAME."""
    value = _value(source)
    secret = _run(lambda c: c.secrets.create(_env(env), name, value))
    show(secret, output, lambda: typer.echo(secret["name"]))


@secrets_app.command("ls")
def secrets_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List the environment's secrets (their values are never shown)."""
    secrets = _run(lambda c: c.secrets.list(_env(env)))
    if not output.is_table:
        return show(secrets, output)
    print_table(["NAME", "STACK", "ID"], [[s["name"], s["stack"] or "-", s["id"]] for s in secrets])


@secrets_app.command("rm")
def secrets_rm(
    names: Annotated[list[str], typer.Argument(help="Secret names.")],
    env: EnvOption = None,
) -> None:
    """Remove secrets; containers created later cannot mount them (running ones keep their copy)."""
    for name in names:
        _run(lambda c, n=name: c.secrets.delete(_env(env), n))
        typer.echo(name)
