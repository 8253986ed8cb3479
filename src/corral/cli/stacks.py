"""Commands for stacks: `corral up`, `ps`, `scale`, `rm`, `stop|start|restart`, `inspect`.

Why the CLI reads files itself: the server never sees the operator's disk, so `up` sends the compose files, the
variables they read and every env_file and extends file they name (cli/project.py reads the project as Compose does).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, FormatOption, _context_client, _env, _run, app
from corral.cli.output import Format, err_console, fail, print_json, print_table, styled_state
from corral.cli.project import load_project
from corral.cli.terminal import interactive_exec
from corral.client import CorralClient
from corral.compose.files import collect_uploads
from corral.model.errors import CorralError, InvalidInput

WAIT_SECONDS = 180.0
STUCK_SECONDS = 20.0  # a reason that has not changed for this long is reported instead of waiting further


def _uploads(compose_path: Path, text: str, answers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The files of relative binds, secrets and configs (read below the compose file's folder) and the values of
    `environment:` secrets and configs, to send with the stack."""
    try:
        uploads = collect_uploads(
            compose_path.name, text, str(compose_path.resolve().parent), answers=answers, environ=os.environ
        )
    except InvalidInput as exc:
        fail(exc.message)
    return uploads.to_wire()


def _stack_name(value: str | None, compose_path: Path) -> str:
    if value:
        return value
    folder = compose_path.resolve().parent.name.lower()
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in folder).strip("-")
    return cleaned or "stack"


@app.command("up")
def up(
    file: Annotated[
        list[Path] | None, typer.Option("-f", "--file", help="docker-compose.yml, then rancher-compose.yml.")
    ] = None,
    stack: Annotated[str | None, typer.Option("-s", "--stack", help="Stack name (default: the folder's name).")] = None,
    answers: Annotated[Path | None, typer.Option("-e", "--answers", help="Answers file (KEY=VALUE lines).")] = None,
    detach: Annotated[bool, typer.Option("-d", "--detach", help="Do not wait for the containers.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every container to run.")] = WAIT_SECONDS,
    upgrade: Annotated[
        bool, typer.Option("-u", "--upgrade", help="Replace changed services' containers in batches (rolling).")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Containers upgraded at a time (default 2).")
    ] = None,
    interval: Annotated[int | None, typer.Option("--interval", min=0, help="Milliseconds between batches.")] = None,
    start_first: Annotated[
        bool | None, typer.Option("--start-first/--stop-first", help="Start each new container before its old one.")
    ] = None,
    confirm_upgrade: Annotated[
        bool, typer.Option("-c", "--confirm-upgrade", help="Finish an upgrade: remove the old containers.")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("-r", "--rollback", help="Undo an upgrade: old containers back, new ones removed.")
    ] = False,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Enable services of this Compose profile (repeatable).")
    ] = None,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """Create or update a stack from compose files and keep its services at scale."""
    if rollback and (upgrade or confirm_upgrade):
        fail("--rollback cannot be combined with --upgrade or --confirm-upgrade")
    if (confirm_upgrade or rollback) and not upgrade:
        name = _stack_name(stack, (list(file or []) or [Path("docker-compose.yml")])[0])
        return _finish_upgrade(env, name, "rollback" if rollback else "confirm-upgrade", detach, timeout, output)
    try:  # compose.yaml discovery, .env, the caller's variables, COMPOSE_PROJECT_NAME, profiles (cli/project.py)
        project = load_project(list(file or []), stack=stack, answers_file=answers, profiles=profile)
    except InvalidInput as exc:
        fail(exc.message)
    name = project.name
    upgrade_request: dict[str, Any] | None = None
    if upgrade:
        wanted = {"batch_size": batch_size, "interval_ms": interval, "start_first": start_first}
        upgrade_request = {key: value for key, value in wanted.items() if value is not None}
    result = _run(
        lambda c: c.stacks.up(
            _env(env),
            name,
            project.compose_text,
            compose_name=project.compose_path.name,
            rancher_compose=project.rancher_text,
            rancher_compose_name=project.rancher_path.name if project.rancher_path else "rancher-compose.yml",
            answers=project.variables,
            env_files=project.env_files,
            upgrade=upgrade_request,
            profiles=project.profiles,
            uploads=_uploads(project.compose_path, project.compose_text, project.variables),
        )
    )
    for warning in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if confirm_upgrade:
        _wait_for_stack(result["id"], timeout, until=("upgraded", "active"))
        return _finish_upgrade(env, name, "confirm-upgrade", detach, timeout, output)
    if not detach:
        until = ("upgraded", "active") if upgrade else ("active",)
        waited = _wait_for_stack(result["id"], timeout, until=until)
        result = {**waited, "changed_services": result.get("changed_services", [])}
    if output is Format.json:
        return print_json(result)
    _print_containers([c for s in result["services"] for c in s["containers"]], show_all=True)


def _finish_upgrade(env: str | None, name: str, action: str, detach: bool, timeout: float, output: Format) -> None:
    """`up --confirm-upgrade` / `up --rollback` of the stack NAME (files are not needed)."""
    stack = _run(lambda c: c.stacks.find(_env(env), name))
    if action == "confirm-upgrade":
        _wait_for_stack(stack["id"], timeout, until=("upgraded", "active"))
    result = _run(lambda c: c.stacks.upgrade_action("stacks", stack["id"], action))
    if not detach:
        result = _wait_for_stack(stack["id"], timeout)
    if output is Format.json:
        return print_json(result)
    _print_containers([c for s in result["services"] for c in s["containers"]], show_all=True)


FAILED_STATES = ("upgrade-error", "rollback-error")


def _wait_for_stack(stack_id: str, timeout: float, *, until: tuple[str, ...] = ("active",)) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last_reasons: tuple[str, ...] = ()
    reasons_since = time.monotonic()
    with err_console.status("starting containers") as status:
        while True:
            stack: dict[str, Any] = _run(lambda c: c.stacks.get(stack_id))
            if stack["state"] in until:
                return stack
            if stack["state"] == "degraded" and "active" in until and not _health_pending(stack):
                err_console.print(f"[yellow]warning:[/yellow] stack {stack['name']} runs, but is degraded")
                for reason in _reasons(stack):
                    err_console.print(f"  {reason}", highlight=False)
                return stack
            if stack["state"] in FAILED_STATES:
                err_console.print(f"[red]error:[/red] stack {stack['name']} is {stack['state']}")
                for reason in _reasons(stack):
                    err_console.print(f"  {reason}", highlight=False)
                raise typer.Exit(1)
            reasons = _reasons(stack)
            if reasons != last_reasons:
                last_reasons, reasons_since = reasons, time.monotonic()
            progress = ", ".join(f"{s['name']} {s['running']}/{s['scale']}" for s in stack["services"])
            status.update(f"starting containers: {progress}")
            transition = stack["state"] in ("upgrading", "rolling-back")  # the server applies its own deadline
            stuck = reasons and not transition and time.monotonic() - reasons_since > STUCK_SECONDS
            if stuck or time.monotonic() > deadline:
                err_console.print(f"[red]error:[/red] stack {stack['name']} is not running yet: {progress}")
                for reason in reasons or ("containers are still starting",):
                    err_console.print(f"  {reason}", highlight=False)
                raise typer.Exit(1)
            time.sleep(0.5)


def _health_pending(stack: dict[str, Any]) -> bool:
    """Some container's health check has not decided yet (initializing or reinitializing)."""
    pending = ("initializing", "reinitializing")
    return any(c.get("health") in pending for s in stack["services"] for c in s["containers"])


def _reasons(stack: dict[str, Any]) -> tuple[str, ...]:
    found = [f"{stack['name']}/{s['name']}: {s['reason']}" for s in stack["services"] if s["reason"]]
    found += [f"{c['name']}: {c['reason']}" for s in stack["services"] for c in s["containers"] if c["reason"]]
    return tuple(found)


def _print_containers(containers: list[dict[str, Any]], *, show_all: bool) -> None:
    rows = []
    for c in containers:
        if not show_all and c["state"] not in ("running", "pending", "created", "restarting"):
            continue
        state = styled_state(c["state"])
        if c["state"] == "exited" and c["exit_code"] is not None:
            state += f" ({c['exit_code']})"
        if c.get("retired"):
            state += " retired"
        host, ip, docker_id = c["host"] or "-", c.get("ip") or "-", c["docker_id"][:12]
        health = styled_state(c["health"]) if c.get("health") else "-"
        reason = c["reason"] or c.get("health_reason", "")
        ports = ", ".join(c.get("ports") or ()) or "-"
        rows.append([c["stack"], c["service"], c["name"], host, state, health, ip, ports, docker_id, reason])
    print_table(["STACK", "SERVICE", "NAME", "HOST", "STATE", "HEALTH", "IP", "PORTS", "DOCKER ID", "REASON"], rows)


@app.command("ps")
def ps(
    stack: Annotated[str | None, typer.Argument(help="Only this stack.")] = None,
    all_containers: Annotated[bool, typer.Option("-a", "--all", help="Also stopped and exited containers.")] = False,
    env: EnvOption = None,
    output: FormatOption = Format.table,
) -> None:
    """List the containers of stacks: where they run and in which state."""
    containers = _run(lambda c: c.stacks.containers(_env(env), stack))
    if output is Format.json:
        return print_json(containers)
    _print_containers(containers, show_all=all_containers)


@app.command("scale")
def scale(
    targets: Annotated[list[str], typer.Argument(help="STACK/SERVICE=N ...")],
    env: EnvOption = None,
) -> None:
    """Set the number of containers of services."""
    wanted: list[tuple[str, int]] = []
    for target in targets:
        ref, sep, count = target.rpartition("=")
        if not sep or "/" not in ref or not count.isdigit():
            fail(f"{target!r} must look like STACK/SERVICE=N")
        wanted.append((ref, int(count)))

    def action(c: CorralClient) -> None:
        for ref, count in wanted:
            service = c.stacks.find_service(_env(env), ref)
            c.stacks.scale(service["id"], count)
            typer.echo(f"{ref}={count}")

    _run(action)


@app.command("rm")
def rm(stacks: Annotated[list[str], typer.Argument(help="Stack names.")], env: EnvOption = None) -> None:
    """Remove stacks and all their containers."""
    for name in stacks:
        _run(lambda c, n=name: c.stacks.delete(c.stacks.find(_env(env), n)["id"]))
        typer.echo(name)


def _container_command(action: str, names: list[str], env: str | None, rolling: tuple[int, int] | None = None) -> None:
    def run(c: CorralClient) -> None:
        for name in names:
            if "/" in name and action == "restart":  # a whole service, restarted by the server
                service_id = c.stacks.find_service(_env(env), name)["id"]
                if rolling is None:
                    c.stacks.restart_service(service_id)
                else:
                    c.stacks.restart_service(service_id, batch_size=rolling[0], interval_ms=rolling[1])
            elif "/" in name:  # a whole service
                service = c.stacks.find_service(_env(env), name)
                for container in service["containers"]:
                    c.stacks.container_action(container["id"], action)
            else:
                c.stacks.container_action(c.stacks.find_container(_env(env), name)["id"], action)
            typer.echo(name)

    _run(run)


@app.command("stop")
def stop(
    names: Annotated[list[str], typer.Argument(help="CONTAINER or STACK/SERVICE ...")], env: EnvOption = None
) -> None:
    """Stop containers (they stay stopped until started)."""
    _container_command("stop", names, env)


@app.command("start")
def start(
    names: Annotated[list[str], typer.Argument(help="CONTAINER or STACK/SERVICE ...")], env: EnvOption = None
) -> None:
    """Start stopped or exited containers."""
    _container_command("start", names, env)


@app.command("restart")
def restart(
    names: Annotated[list[str], typer.Argument(help="CONTAINER or STACK/SERVICE ...")],
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Restart a service this many containers at a time.")
    ] = None,
    interval: Annotated[int, typer.Option("--interval", min=0, help="Milliseconds between batches.")] = 0,
    env: EnvOption = None,
) -> None:
    """Restart containers; a service in batches with --batch-size (a rolling restart)."""
    _container_command("restart", names, env, (batch_size, interval) if batch_size is not None else None)


@app.command("inspect")
def inspect(
    ref: Annotated[str, typer.Argument(help="STACK, STACK/SERVICE or CONTAINER")], env: EnvOption = None
) -> None:
    """Everything known about a stack, a service or a container, as JSON."""

    def lookup(c: CorralClient) -> dict[str, Any]:
        if "/" in ref:
            return c.stacks.find_service(_env(env), ref)
        try:
            return c.stacks.find(_env(env), ref)
        except CorralError:
            return c.stacks.find_container(_env(env), ref)

    print_json(_run(lookup))


def _targets(c: CorralClient, env: str | None, ref: str) -> list[dict[str, Any]]:
    """The containers a CLI argument names: one container, or every container of STACK/SERVICE."""
    if "/" in ref:
        containers: list[dict[str, Any]] = c.stacks.find_service(_env(env), ref)["containers"]
        return containers
    return [c.stacks.find_container(_env(env), ref)]


@app.command("logs")
def logs(
    target: Annotated[str, typer.Argument(help="CONTAINER or STACK/SERVICE")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new output.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", min=0, help="Only the last N lines.")] = None,
    env: EnvOption = None,
) -> None:
    """Print the output of containers (prefixed by the container's name when there are several)."""
    containers = _run(lambda c: _targets(c, env, target))
    prefix = len(containers) > 1
    lock = threading.Lock()
    failures: list[str] = []

    def pump(container: dict[str, Any]) -> None:
        pending = b""
        try:
            with _context_client() as client:
                for chunk in client.stacks.logs(container["id"], follow=follow, tail=tail):
                    if not prefix:
                        with lock:
                            sys.stdout.buffer.write(chunk)
                            sys.stdout.flush()
                        continue
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    with lock:
                        for line in lines:
                            sys.stdout.buffer.write(container["name"].encode() + b" | " + line + b"\n")
                        sys.stdout.flush()
            if pending:
                with lock:
                    sys.stdout.buffer.write(container["name"].encode() + b" | " + pending + b"\n")
        except CorralError as exc:
            failures.append(f"{container['name']}: {exc.message}")

    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if failures:
        fail("; ".join(failures))


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_command(
    container: Annotated[str, typer.Argument(help="CONTAINER (name or id)")],
    cmd: Annotated[list[str], typer.Argument(help="Command and arguments (put them after --).")],
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep stdin open.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a terminal.")] = False,
    env: EnvOption = None,
) -> None:
    """Run a command in a container; exits with the command's exit code."""
    if cmd and cmd[0] == "--":  # typer keeps the separator in the arguments
        cmd = cmd[1:]
    if not cmd:
        fail("give the command to run after --, e.g. corral exec web-1 -- sh -c 'echo hi'")
    target = _run(lambda c: c.stacks.find_container(_env(env), container))
    if not interactive and not tty:
        result = _run(lambda c: c.stacks.exec(target["id"], cmd))
        sys.stdout.write(result["stdout"])
        sys.stderr.write(result["stderr"])
        raise typer.Exit(result["exit_code"] if isinstance(result["exit_code"], int) else 1)
    url, headers, context = _run(lambda c: (*c.stacks.exec_socket(target["id"], cmd, tty=tty), c.ssl_context))
    raise typer.Exit(interactive_exec(url, headers, tty=tty, ssl_context=context))
