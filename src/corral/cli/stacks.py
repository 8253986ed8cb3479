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

from corral.cli.builds import build_contexts, follow_builds
from corral.cli.events import iso, parse_since
from corral.cli.filters import KEYS as FILTER_KEYS
from corral.cli.filters import Filters, parse_filters
from corral.cli.main import EnvOption, FormatOption, InspectOption, OutputOption, _context_client, _env, _run, app
from corral.cli.output import JSON, TABLE, Format, err_console, fail, print_json, print_table, show, styled_state
from corral.cli.plan import print_plan
from corral.cli.project import load_project
from corral.cli.terminal import interactive_exec
from corral.cli.waiting import (
    ended_after,
    started_after,
    stopped,
    wait_for_containers,
    wait_for_service,
)
from corral.cli.waiting import wait_for_stack as _wait_for_stack
from corral.client import CorralClient
from corral.model.errors import Conflict, CorralError, InvalidInput, NotFound

WAIT_SECONDS = 180.0
ACTION_SECONDS = 60.0  # stop, start, restart: Docker's stop timeout is 10 s per container


def _uploads(compose_path: Path, text: str, answers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The files of relative binds, secrets and configs (read below the compose file's folder) and the values of
    `environment:` secrets and configs, to send with the stack."""
    from corral.compose.files import collect_uploads  # here: the verbs that send no project start without it

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
    build: Annotated[
        bool | None,
        typer.Option("--build/--no-build", help="Build images even if their context did not change / never build."),
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Only show what up would create, change and remove; change nothing.")
    ] = False,
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
    contexts = build_contexts(project.compose_path, project.compose_text, project.variables, build)
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
            builds=contexts,
            plan=plan,
        )
    )
    if plan:
        return print_plan(result, output)
    for warning in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if contexts is not None and contexts[1] and build is not False:
        follow_builds(result["id"], timeout, result.get("builds", []))
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


_LIVE_STATES = ("running", "pending", "created", "restarting", "starting", "stopping")


def _print_containers(
    containers: list[dict[str, Any]], *, show_all: bool, extra: list[list[str]] | None = None
) -> None:
    rows = []
    for c in containers:
        if not show_all and c["state"] not in _LIVE_STATES:
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
        stack, service = ("(standalone)", "-") if c.get("standalone") else (c["stack"], c["service"])
        rows.append([stack, service, c["name"], host, state, health, ip, ports, docker_id, reason])
    for stack, service, name, host, state, reason in extra or []:
        rows.append([stack, service, name, host, state, "-", "-", "-", "-", reason])
    print_table(["STACK", "SERVICE", "NAME", "HOST", "STATE", "HEALTH", "IP", "PORTS", "DOCKER ID", "REASON"], rows)


def _unplaced_rows(services: list[dict[str, Any]], filters: Filters | None = None) -> list[list[str]]:
    """One `ps` row per index no host can take, with its reason (the server groups them: model/reasons.py)."""
    rows = []
    for service in services:
        for group in service.get("unplaced", []):
            for index in group["indexes"]:
                name = f"{service['stack']}-{service['name']}-{index}"
                row = {"name": name, "stack": service["stack"], "service": service["name"], "state": "unplaced"}
                if filters and not filters.matches({**row, "stack_id": service.get("stack_id"), "host": ""}):
                    continue
                rows.append([service["stack"], service["name"], name, "-", styled_state("unplaced"), group["reason"]])
    return rows


@app.command("ps")
def ps(
    stack: Annotated[str | None, typer.Argument(help="Only this stack.")] = None,
    all_containers: Annotated[bool, typer.Option("-a", "--all", help="Also stopped and exited containers.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only container ids.")] = False,
    standalone: Annotated[bool, typer.Option("--standalone", help="Only standalone containers (corral run).")] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help=f"KEY=VALUE (repeatable); keys: {', '.join(FILTER_KEYS)}.", metavar="KEY=VALUE"),
    ] = None,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """List the containers of stacks and the standalone ones: where they run and in which state, and the indexes
    no host can take."""
    try:
        filters = parse_filters([*(filter_ or []), *([f"stack={stack}"] if stack is not None else [])])
    except InvalidInput as exc:
        fail(exc.message)
    services: list[dict[str, Any]] = []
    if standalone:
        containers = [c for c in _run(lambda c: c.standalone.list(_env(env))) if filters.matches(c)]
    elif filters:
        containers, services = _filtered(filters, env)
        all_containers = all_containers or "state" in filters.values
    else:
        stacks, alone = _run(lambda c: (c.stacks.list_all(_env(env), containers=True), c.standalone.list(_env(env))))
        services = [service for s in stacks for service in s["services"]]
        containers = [c for service in services for c in service["containers"]] + alone
    if not all_containers and output.format is not Format.json:  # JSON has always listed every container
        containers = [c for c in containers if c["state"] in _LIVE_STATES]
    if quiet:
        for container in containers:
            typer.echo(container["id"])
        return
    if not output.is_table:
        return show(containers, output)
    _print_containers(containers, show_all=True, extra=_unplaced_rows(services, filters))


def _filtered(filters: Filters, env: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The containers the filters keep (narrowed by the server where it can) and the services whose unplaced
    indexes could match them (none when a host or a state other than `unplaced` is asked for)."""
    params = filters.server_params()
    stack = params.pop("stack", None)
    wanted_states = filters.values.get("state", ())
    containers: list[dict[str, Any]] = []
    if wanted_states != ("unplaced",):
        found = _run(lambda c: c.stacks.containers(_env(env), stack, **params))
        containers = [c for c in found if filters.matches(c)]
    services: list[dict[str, Any]] = []
    if "host" not in filters.values and (not wanted_states or "unplaced" in wanted_states):
        stacks = _run(lambda c: c.stacks.list_all(_env(env)))
        services = [service for s in stacks for service in s["services"]]
    return containers, services


DetachOption = Annotated[bool, typer.Option("-d", "--detach", help="Return at once; do not wait for the change.")]


@app.command("scale")
def scale(
    targets: Annotated[list[str], typer.Argument(help="STACK/SERVICE=N ...", metavar="STACK/SERVICE=N")],
    detach: DetachOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the containers.")] = WAIT_SECONDS,
    env: EnvOption = None,
) -> None:
    """Set the number of containers of services; waits until they run (exit 1 naming the indexes that cannot)."""
    wanted: list[tuple[str, int]] = []
    for target in targets:
        ref, sep, count = target.rpartition("=")
        if not sep or "/" not in ref or not count.isdigit():
            fail(f"{target!r} must look like STACK/SERVICE=N")
        wanted.append((ref, int(count)))

    def action(c: CorralClient) -> list[tuple[str, str]]:
        scaled = []
        for ref, count in wanted:
            service = c.stacks.find_service(_env(env), ref)
            c.stacks.scale(service["id"], count)
            scaled.append((ref, service["id"]))
        return scaled

    for ref, service_id in _run(action):
        if not detach:
            wait_for_service(service_id, timeout, doing=f"scaling {ref}")
        typer.echo(f"{ref}={dict(wanted)[ref]}")


@app.command("rm")
def rm(
    stacks: Annotated[list[str], typer.Argument(help="Stacks or standalone containers (names or ids).")],
    env: EnvOption = None,
    keep_volumes: Annotated[
        bool, typer.Option("--keep-volumes", help="Keep the stacks' own volumes (removed with them by default).")
    ] = False,
) -> None:
    """Remove stacks and all their containers, or standalone containers (corral run) by name."""
    for name in stacks:
        _run(lambda c, n=name: _remove(c, _env(env), n, keep_volumes))
        typer.echo(name)


def _remove(c: CorralClient, env: str, name: str, keep_volumes: bool) -> None:
    """The stack NAME, else the standalone container NAME; both existing is ambiguous: nothing is removed."""
    try:
        stack = c.stacks.find(env, name)
    except NotFound:
        c.standalone.remove(c.standalone.find(env, name)["id"])
        return
    if any(x["name"] == name for x in c.standalone.list(env)):
        raise Conflict(f"{name} is both a stack and a standalone container: name the one to remove by its id")
    c.stacks.delete(stack["id"], keep_volumes=keep_volumes)


def _containers_of(c: CorralClient, env: str | None, name: str) -> list[dict[str, Any]]:
    """The containers NAME stands for: a container, every container of STACK/SERVICE, or of a stack."""
    if "/" in name:
        containers: list[dict[str, Any]] = c.stacks.find_service(_env(env), name)["containers"]
        return [x for x in containers if not x.get("retired")]
    try:
        return [c.stacks.find_container(_env(env), name)]
    except CorralError:
        stack = c.stacks.find(_env(env), name)
        return [x for s in stack["services"] for x in s["containers"] if not x.get("retired")]


def _container_command(
    action: str,
    names: list[str],
    env: str | None,
    rolling: tuple[int, int] | None = None,
    *,
    detach: bool = False,
    timeout: float = ACTION_SECONDS,
) -> None:
    touched: list[dict[str, Any]] = []

    def run(c: CorralClient) -> None:
        for name in names:
            containers = _containers_of(c, env, name)
            touched.extend(containers)
            if "/" in name and action == "restart":  # a whole service, restarted by the server
                service_id = containers[0]["service_id"] if containers else c.stacks.find_service(_env(env), name)["id"]
                if rolling is None:
                    c.stacks.restart_service(service_id)
                else:
                    c.stacks.restart_service(service_id, batch_size=rolling[0], interval_ms=rolling[1])
            else:
                for container in containers:
                    c.stacks.container_action(container["id"], action)

    _run(run)
    if not detach and touched:
        doing = {"stop": "stopping", "start": "starting", "restart": "restarting"}[action]
        if action == "stop":
            wait_for_containers(touched, stopped, timeout, doing=doing)
        else:
            before = {c["id"]: float(c.get("start_requested_at") or 0.0) for c in touched}
            wait = timeout if rolling is None else max(timeout, WAIT_SECONDS)
            wait_for_containers(touched, started_after(before), wait, doing=doing, failed=ended_after(before))
    for name in names:
        typer.echo(name)


TargetsArgument = Annotated[list[str], typer.Argument(help="CONTAINER, STACK/SERVICE or STACK ...", metavar="TARGET")]
ActionTimeout = Annotated[float, typer.Option(help="Seconds to wait for the engine.")]


@app.command("stop")
def stop(
    names: TargetsArgument, detach: DetachOption = False, timeout: ActionTimeout = ACTION_SECONDS, env: EnvOption = None
) -> None:
    """Stop containers (they stay stopped until started); waits until the engine reports them exited."""
    _container_command("stop", names, env, detach=detach, timeout=timeout)


@app.command("start")
def start(
    names: TargetsArgument, detach: DetachOption = False, timeout: ActionTimeout = ACTION_SECONDS, env: EnvOption = None
) -> None:
    """Start stopped or exited containers; waits until they run."""
    _container_command("start", names, env, detach=detach, timeout=timeout)


@app.command("restart")
def restart(
    names: TargetsArgument,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Restart a service this many containers at a time.")
    ] = None,
    interval: Annotated[int, typer.Option("--interval", min=0, help="Milliseconds between batches.")] = 0,
    detach: DetachOption = False,
    timeout: ActionTimeout = ACTION_SECONDS,
    env: EnvOption = None,
) -> None:
    """Restart containers; a service in batches with --batch-size (a rolling restart). Waits until they run again."""
    rolling = (batch_size, interval) if batch_size is not None else None
    _container_command("restart", names, env, rolling, detach=detach, timeout=timeout)


stacks_app = typer.Typer(no_args_is_help=True, help="Stacks: list them (create with `up`, remove with `rm`).")
app.add_typer(stacks_app, name="stacks")


@stacks_app.command("ls")
def stacks_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List stacks with their state and how many containers run."""
    stacks = _run(lambda c: c.stacks.list_all(_env(env)))
    if not output.is_table:
        return show(stacks, output)
    rows = []
    for s in stacks:
        running = sum(service["running"] for service in s["services"])
        wanted = sum(service["scale"] for service in s["services"])
        origin = s.get("catalog") or {}
        source = f"{origin['catalog']}/{origin['template']}:{origin['version']}" if origin else "-"
        rows.append([s["name"], styled_state(s["state"]), len(s["services"]), f"{running}/{wanted}", source, s["id"]])
    print_table(["NAME", "STATE", "SERVICES", "CONTAINERS", "CATALOG", "ID"], rows)


TIME_KEYS = ("created_at", "updated_at", "since", "last_seen", "start_requested_at", "expires_at", "revoked_at")


def iso_times(value: Any) -> Any:
    """The value with every UNIX time under a `*_at`/`since`/`last_seen` key as ISO 8601 UTC (0 stays null)."""
    if isinstance(value, list):
        return [iso_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if key in TIME_KEYS and isinstance(item, int | float) and not isinstance(item, bool):
            converted[key] = iso(item) if item > 0 else None
        else:
            converted[key] = iso_times(item)
    return converted


@app.command("inspect")
def inspect(
    ref: Annotated[str, typer.Argument(help="STACK, STACK/SERVICE or CONTAINER")],
    env: EnvOption = None,
    output: InspectOption = JSON,
) -> None:
    """Everything known about a stack, a service or a container, as JSON."""

    def lookup(c: CorralClient) -> dict[str, Any]:
        if "/" in ref:
            return c.stacks.find_service(_env(env), ref)
        try:
            return c.stacks.find(_env(env), ref)
        except CorralError:
            return c.stacks.find_container(_env(env), ref)

    show(iso_times(_run(lookup)), output)


def _targets(c: CorralClient, env: str | None, ref: str) -> list[dict[str, Any]]:
    """The containers a CLI argument names: one container, every container of STACK/SERVICE, or of a stack."""
    return _containers_of(c, env, ref)


@app.command("logs")
def logs(
    target: Annotated[str, typer.Argument(help="CONTAINER, STACK/SERVICE or STACK")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new output.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", min=0, help="Only the last N lines.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="WHEN", help="Only output since: 10m, 2h, ISO time.")
    ] = None,
    timestamps: Annotated[bool, typer.Option("-t", "--timestamps", help="Show each line's time.")] = False,
    env: EnvOption = None,
) -> None:
    """Print the output of containers (prefixed by the container's name when there are several)."""
    start = parse_since(since, time.time()) if since is not None else None
    containers = _run(lambda c: _targets(c, env, target))
    prefix = len(containers) > 1
    lock = threading.Lock()
    failures: list[str] = []

    def pump(container: dict[str, Any]) -> None:
        pending = b""
        try:
            with _context_client() as client:
                chunks = client.stacks.logs(
                    container["id"], follow=follow, tail=tail, since=start, timestamps=timestamps
                )
                for chunk in chunks:
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
