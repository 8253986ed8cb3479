"""Commands for volumes: `corral volume ls|create|rm|inspect` (issue 17 item 4; Rancher's `rancher volume`).

Why a table of hosts per volume: a named volume exists once per host engine; `ls` shows where each one's data is
(the hosts that hold it) and who mounts it, which is what decides whether it can be removed and where its
containers are placed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, FormatOption, _env, _run, app
from corral.cli.output import Format, fail, print_json, print_table

volume_app = typer.Typer(no_args_is_help=True, help="Volumes of an environment: where they are, who uses them.")
app.add_typer(volume_app, name="volume")


def _hosts(volume: dict[str, Any]) -> str:
    return ",".join(h["name"] for h in volume["hosts"]) or "-"


@volume_app.command("ls")
def volume_ls(
    env: EnvOption = None,
    stack: Annotated[str | None, typer.Option("--stack", help="Only this stack's volumes.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Only volumes this host holds (name or id).")] = None,
    state: Annotated[str | None, typer.Option("--state", help="active, inactive, detached or removing.")] = None,
    output: FormatOption = Format.table,
) -> None:
    """List the environment's volumes with their state, scope, hosts and the containers that mount them."""
    volumes = _run(lambda c: c.volumes.list(_env(env), stack=stack, host=host, state=state))
    if output is Format.json:
        return print_json(volumes)
    print_table(
        ["NAME", "STATE", "SCOPE", "STACK", "DRIVER", "HOSTS", "CONTAINERS"],
        [
            [
                v["name"],
                v["state"],
                v["scope"],
                v["stack"] or "-",
                v["driver"],
                _hosts(v),
                ",".join(v["containers"]) or "-",
            ]
            for v in volumes
        ],
    )


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--opt {pair!r}: expected KEY=VALUE")
        options[key] = value
    return options


@volume_app.command("create")
def volume_create(
    name: Annotated[str, typer.Argument(help="Volume name (letters, digits, '_', '.', '-').")],
    env: EnvOption = None,
    driver: Annotated[str, typer.Option("--driver", "-d", help="Volume driver.")] = "local",
    opt: Annotated[list[str] | None, typer.Option("--opt", "-o", help="Driver option KEY=VALUE (repeatable).")] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Create it on this host (repeatable; default: every host).")
    ] = None,
    output: FormatOption = Format.table,
) -> None:
    """Create an environment volume (what compose `external: true` names) on some or every active host."""
    options = _options(opt or [])
    result = _run(lambda c: c.volumes.create(_env(env), name, driver=driver, driver_opts=options, hosts=host))
    if output is Format.json:
        return print_json(result)
    for entry in result["hosts"]:
        typer.echo(f"{name} on {entry['name']}: {entry['error'] or 'created'}")


@volume_app.command("rm")
def volume_rm(names: Annotated[list[str], typer.Argument(help="Volume names.")], env: EnvOption = None) -> None:
    """Remove volumes from every host that holds them; refused while a container mounts one."""
    for name in names:
        _run(lambda c, n=name: c.volumes.delete(_env(env), n))
        typer.echo(name)


@volume_app.command("inspect")
def volume_inspect(name: Annotated[str, typer.Argument(help="Volume name.")], env: EnvOption = None) -> None:
    """Show one volume as JSON: its state, scope, labels and, per host, the containers that mount it."""
    print_json(_run(lambda c: c.volumes.get(_env(env), name)))
