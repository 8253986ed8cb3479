"""`corral run`: a standalone container, as `docker run` and Rancher 1.6's `rancher run` start one (issue 18).

Why it waits: like the other verbs that change state, `run` returns once the engine runs the container (or exits 1
with the reason: the image cannot be pulled, the command exited), and `-d` returns at once. The container stays on
the host it was placed on; `corral ps` lists it with the stacks' containers, `corral stop|start|logs|exec NAME`
reach it as any container, `corral rm NAME` removes it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, _env, _run, app, fail
from corral.cli.waiting import wait_for_containers
from corral.model.errors import InvalidInput
from corral.model.names import parse_label_pairs

RUN_SECONDS = 300.0  # a first pull of a large image takes a while


def _done(restart: str) -> Any:
    """Running, or (restart `no`) ended cleanly: `corral run IMAGE echo hi` succeeds as `docker run` does."""
    return lambda c: c["state"] == "running" or (restart == "no" and c["state"] == "exited" and c["exit_code"] == 0)


def _failed(c: dict[str, Any]) -> bool:
    return bool(c["state"] in ("dead", "lost") or (c["state"] == "exited" and c["exit_code"] != 0))


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"-e {pair!r}: expected KEY=VALUE")
        values[key] = value
    return values


@app.command("run", context_settings={"allow_interspersed_args": False})
def run(
    image: Annotated[str, typer.Argument(help="The image, e.g. corral/busybox.")],
    command: Annotated[list[str] | None, typer.Argument(help="The command and its arguments.", metavar="CMD")] = None,
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Return at once, without waiting.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Its name (unique in the environment).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="The host to run on (default: the scheduler's).")] = None,
    environment: Annotated[
        list[str] | None, typer.Option("-e", "--env-var", help="KEY=VALUE (repeatable).", metavar="KEY=VALUE")
    ] = None,
    publish: Annotated[
        list[str] | None, typer.Option("-p", "--publish", help="[HOST:]CONTAINER[/udp] (repeatable).", metavar="PORT")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("-l", "--label", help="k=v (repeatable).", metavar="K=V")] = None,
    restart: Annotated[str, typer.Option("--restart", help="no, always, on-failure or unless-stopped.")] = "no",
    timeout: Annotated[float, typer.Option(help="Seconds to wait until it runs.")] = RUN_SECONDS,
    env: EnvOption = None,
) -> None:
    """Run a standalone container on one host (never moved elsewhere); print its name once it runs."""
    try:
        labels = parse_label_pairs(label or [], field="label")
    except InvalidInput as exc:
        fail(exc.message)
    fields: dict[str, Any] = {
        "name": name,
        "command": list(command) if command else None,
        "env": _env_pairs(environment or []) or None,
        "ports": list(publish) if publish else None,
        "labels": labels or None,
        "restart": restart,
        "host": host,
    }
    created = _run(lambda c: c.standalone.run(_env(env), image, **fields))
    if not detach:
        wait_for_containers(
            [created],
            _done(restart),
            timeout,
            doing=f"starting {created['name']}",
            failed=_failed,
        )
    typer.echo(created["name"])
