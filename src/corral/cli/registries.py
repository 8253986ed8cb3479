"""Commands for private registry credentials: `corral registries add|update|ls|rm`.

Why the password comes from standard input: a flag's value is visible to every user of the machine in `ps` and
lands in shell history. `--password-stdin` reads it (one line, the newline dropped), as `docker login` does:
`printf %s "$PASS" | corral registries add registry.example.com:5000 --username me --password-stdin`.
`--password VALUE` is accepted for scripts that cannot do otherwise, with that warning. No command ever prints a
password: the server never returns one.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from corral.cli.main import EnvOption, OutputOption, _env, _run, app
from corral.cli.output import TABLE, fail, print_table, show

registries_app = typer.Typer(no_args_is_help=True, help="Private registry credentials of an environment.")
app.add_typer(registries_app, name="registries")

UsernameOption = Annotated[str, typer.Option("--username", "-u", help="User name at the registry.")]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (recommended).")
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", help="The password itself: visible to other users in `ps`; prefer --password-stdin."),
]


def _password(from_stdin: bool, given: str | None) -> str:
    if from_stdin and given is not None:
        fail("give the password either with --password-stdin or with --password, not both")
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: standard input held no password")
        return password
    if given is None:
        fail("the password is missing: pipe it in with --password-stdin")
    return given


@registries_app.command("add")
def registries_add(
    server: Annotated[str, typer.Argument(help="Registry as image references name it: host[:port].")],
    username: UsernameOption,
    password_stdin: PasswordStdinOption = False,
    password: PasswordOption = None,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Add credentials for a private registry; the environment's hosts use them to pull its images."""
    secret = _password(password_stdin, password)
    registry = _run(lambda c: c.add_registry(_env(env), server, username, secret))
    show(registry, output, lambda: typer.echo(registry["id"]))


@registries_app.command("update")
def registries_update(
    ref: Annotated[str, typer.Argument(help="Registry server or id.")],
    username: UsernameOption,
    password_stdin: PasswordStdinOption = False,
    password: PasswordOption = None,
    env: EnvOption = None,
) -> None:
    """Replace the user name and password of a registry entry."""
    secret = _password(password_stdin, password)
    registry = _run(lambda c: c.update_registry(c.find_registry(_env(env), ref)["id"], username, secret))
    typer.echo(registry["id"])


@registries_app.command("ls")
def registries_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List the environment's registries (passwords are never shown)."""
    registries = _run(lambda c: c.list_registries(_env(env)))
    if not output.is_table:
        return show(registries, output)
    print_table(["ID", "SERVER", "USERNAME"], [[r["id"], r["server"], r["username"]] for r in registries])


@registries_app.command("rm")
def registries_rm(
    refs: Annotated[list[str], typer.Argument(help="Registry servers or ids.")],
    env: EnvOption = None,
) -> None:
    """Remove registry credentials; later pulls from that registry go without them."""
    for ref in refs:
        _run(lambda c, r=ref: c.delete_registry(c.find_registry(_env(env), r)["id"]))
        typer.echo(ref)
