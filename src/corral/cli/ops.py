"""`corral down`, `corral wait` and `corral port`: the verbs `docker compose down|wait|port` and `docker port`
users reach for.

Why `down` waits on the hosts' reports: removing a stack is immediate on the server, but its containers go when
each agent converges its engine; `down` returns once no host reports a container of the stack any more (the same
truth `docker ps` on the host would tell), so a script can `down` then `up` again without a name clash.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, _env, _run, app
from corral.cli.output import Progress, err_console, fail
from corral.cli.project import load_project
from corral.cli.waiting import STOPPED_STATES, _outdated_containers
from corral.client import CorralClient
from corral.model.errors import InvalidInput, NotFound

CONTAINER_LABEL = "io.corral.container"  # runtime/labels.py: the Corral id a Docker container carries
WAIT_SECONDS = 180.0
POLL_SECONDS = 0.5

DetachOption = Annotated[bool, typer.Option("-d", "--detach", help="Return at once; do not wait for the change.")]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait.")]


# -- down ------------------------------------------------------------------------------------------------------


@app.command("down")
def down(
    stacks: Annotated[list[str] | None, typer.Argument(help="Stacks (default: the project here).")] = None,
    file: Annotated[
        list[Path] | None, typer.Option("-f", "--file", help="Compose file naming the project (default: found).")
    ] = None,
    project: Annotated[str | None, typer.Option("-p", "--project-name", "-s", "--stack", help="Stack name.")] = None,
    volumes: Annotated[
        bool, typer.Option("-v", "--volumes", help="Remove the stacks' own volumes too (kept by default).")
    ] = False,
    detach: DetachOption = False,
    timeout: TimeoutOption = WAIT_SECONDS,
    env: EnvOption = None,
) -> None:
    """Remove stacks (default: the project of the compose files here, named as `up` names it) and wait until
    their containers are gone from the hosts. As `docker compose down`, it keeps the stacks' volumes unless `-v`
    (`corral rm` removes them unless `--keep-volumes`, as Rancher did)."""
    names = list(stacks or []) or [project or _project_name(list(file or []))]
    for name in names:
        stack = _run(lambda c, n=name: _find_stack(c, _env(env), n))
        if stack is None:
            err_console.print(f"[yellow]warning:[/yellow] stack {name} does not exist: nothing to remove")
            continue
        placed = {c["id"]: c for s in stack["services"] for c in s["containers"] if c.get("host_id")}
        _run(lambda c, s=stack: c.stacks.delete(s["id"], keep_volumes=not volumes))
        if not detach and placed:
            wait_gone(name, placed, timeout)
        typer.echo(name)


def _project_name(files: list[Path]) -> str:
    try:
        return load_project(files).name
    except InvalidInput as exc:
        fail(f"{exc.message} (or name the stacks: corral down STACK...)")


def _find_stack(client: CorralClient, environment: str, name: str) -> dict[str, Any] | None:
    try:
        return client.stacks.find(environment, name)
    except NotFound:
        return None


def remaining(placed: dict[str, dict[str, Any]], reported: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The stack's containers some host still reports: `placed` (Corral id -> container), `reported` (host id ->
    the containers its agent last reported)."""
    left = []
    for host_id, containers in reported.items():
        for container in containers:
            corral_id = (container.get("labels") or {}).get(CONTAINER_LABEL)
            if corral_id in placed and placed[corral_id].get("host_id") == host_id:
                left.append(placed[corral_id]["name"])
    return sorted(left)


def wait_gone(stack: str, placed: dict[str, dict[str, Any]], timeout: float) -> None:
    """Until no host reports a container of `placed`; exit 1 naming the ones left (and their hosts) at `timeout`."""
    host_ids = sorted({c["host_id"] for c in placed.values()})
    deadline = time.monotonic() + timeout
    with Progress(f"removing {stack}") as progress:
        while True:
            reported = _run(lambda c: _reported(c, host_ids))
            left = remaining(placed, reported)
            if not left:
                return
            if time.monotonic() > deadline:
                hosts = sorted({placed_host(placed, name) for name in left})
                err_console.print(
                    f"[red]error:[/red] {stack}: after {timeout:g} s, {', '.join(left)} still on {', '.join(hosts)} "
                    "(the hosts' agents remove them once they are connected)",
                    highlight=False,
                )
                raise typer.Exit(1)
            progress.update(f"removing {stack}: {len(left)} container{'s' if len(left) != 1 else ''} left")
            time.sleep(POLL_SECONDS)


def placed_host(placed: dict[str, dict[str, Any]], name: str) -> str:
    return next((c.get("host") or c["host_id"] for c in placed.values() if c["name"] == name), "?")


def _reported(client: CorralClient, host_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for host_id in host_ids:
        try:
            found[host_id] = client.list_host_containers(host_id)
        except NotFound:  # a host removed meanwhile took its containers with it
            found[host_id] = []
    return found


# -- wait ------------------------------------------------------------------------------------------------------


def unsettled(service: dict[str, Any]) -> list[str]:
    """Why a service is not settled yet (nothing: every index runs its current configuration and is healthy, or
    is stopped as asked)."""
    problems: list[str] = []
    if service.get("unplaced"):
        problems.append(service["reason"] or "some indexes cannot be placed")
    current = [c for c in service["containers"] if not c.get("retired")]
    if len(current) < service["scale"]:
        problems.append(f"{len(current)}/{service['scale']} containers created")
    behind = {c["id"] for c in _outdated_containers(service)}
    for c in current:
        name, state = c["name"], c["state"]
        why = f": {c['reason']}" if c.get("reason") else ""
        if c["desired"] != "running":
            if state not in STOPPED_STATES:
                problems.append(f"{name} {state}, to be stopped")
        elif state == "exited" and c.get("exit_code") == 0 and service["state"] == "active":
            continue  # ran once to a clean end (start_once, run_once), as its service wants
        elif state != "running":
            problems.append(f"{name} {state}{why}")
        elif c.get("health") not in (None, "", "healthy"):
            reason = f": {c['health_reason']}" if c.get("health_reason") else ""
            problems.append(f"{name} {c['health']}{reason}")
        elif c["id"] in behind:
            problems.append(f"{name} not on its service's current configuration yet")
    return problems


def _services_of(client: CorralClient, environment: str, target: str) -> list[dict[str, Any]]:
    if "/" in target:
        return [client.stacks.get_service(client.stacks.find_service(environment, target)["id"])]
    stack = client.stacks.get(client.stacks.find(environment, target)["id"])
    services: list[dict[str, Any]] = stack["services"]
    return services


@app.command("wait")
def wait(
    targets: Annotated[list[str], typer.Argument(help="STACK or STACK/SERVICE ...", metavar="TARGET")],
    timeout: TimeoutOption = WAIT_SECONDS,
    env: EnvOption = None,
) -> None:
    """Wait until stacks or services are settled: every index running its current configuration and healthy;
    exit 1 with the reasons after --timeout."""
    deadline = time.monotonic() + timeout
    with Progress("waiting") as progress:
        while True:
            problems = {
                target: [p for s in _run(lambda c, t=target: _services_of(c, _env(env), t)) for p in unsettled(s)]
                for target in targets
            }
            waiting = {target: found for target, found in problems.items() if found}
            if not waiting:
                break
            if time.monotonic() > deadline:
                for target, found in waiting.items():
                    err_console.print(f"[red]error:[/red] {target} is not settled after {timeout:g} s:")
                    for problem in found:
                        err_console.print(f"  {problem}", highlight=False)
                raise typer.Exit(1)
            progress.update("waiting for " + "; ".join(f"{t}: {p[0]}" for t, p in waiting.items()))
            time.sleep(POLL_SECONDS)
    for target in targets:
        typer.echo(f"{target} settled")


# -- port ------------------------------------------------------------------------------------------------------


def parse_published(text: str) -> tuple[str, int, int, str]:
    """`HOSTIP:PORT->CONTAINER/proto` (a container's `ports` as the server shows them) as (address, host port,
    container port, protocol)."""
    outside, arrow, inside = text.partition("->")
    address, colon, host_port = outside.rpartition(":")
    port, _, protocol = inside.partition("/")
    if not arrow or not colon or not host_port.isdigit() or not port.isdigit():
        raise InvalidInput(f"not a published port: {text!r}", field="ports")
    return address, int(host_port), int(port), protocol or "tcp"


def parse_private(text: str) -> tuple[int, str]:
    """`80` or `80/udp` as (80, protocol)."""
    port, _, protocol = text.partition("/")
    protocol = protocol.lower() or "tcp"
    if not port.isdigit() or not 0 < int(port) < 65536 or protocol not in ("tcp", "udp", "sctp"):
        raise InvalidInput(f"{text!r}: give the container's port as PORT or PORT/PROTO (tcp, udp)", field="port")
    return int(port), protocol


def _port_targets(client: CorralClient, environment: str, target: str) -> list[dict[str, Any]]:
    parts = target.split("/")
    if len(parts) == 1:
        return [client.stacks.find_container(environment, target)]
    if len(parts) > 3 or (len(parts) == 3 and not parts[2].isdigit()):
        raise InvalidInput(f"{target!r}: give STACK/SERVICE, STACK/SERVICE/INDEX or a container", field="target")
    service = client.stacks.find_service(environment, "/".join(parts[:2]))
    containers = [c for c in service["containers"] if not c.get("retired")]
    if len(parts) == 3:
        containers = [c for c in containers if c["index"] == int(parts[2])]
        if not containers:
            raise NotFound(f"{target}: {'/'.join(parts[:2])} has no index {parts[2]}", field="target")
    return sorted(containers, key=lambda c: int(c["index"]))


@app.command("port")
def port(
    target: Annotated[str, typer.Argument(help="STACK/SERVICE[/INDEX] or CONTAINER", metavar="TARGET")],
    private: Annotated[str | None, typer.Argument(help="PORT[/PROTO] inside the container", metavar="PORT")] = None,
    env: EnvOption = None,
) -> None:
    """Print the host address:port each published port of a container maps to (all of a service's containers
    without INDEX)."""
    try:
        wanted = parse_private(private) if private is not None else None
    except InvalidInput as exc:
        fail(exc.message)
    containers = _run(lambda c: _port_targets(c, _env(env), target))
    lines: list[str] = []
    for container in containers:
        prefix = f"{container['name']}: " if len(containers) > 1 else ""
        for address, host_port, inside, protocol in (parse_published(p) for p in container.get("ports") or ()):
            if wanted is None:
                lines.append(f"{prefix}{inside}/{protocol} -> {address}:{host_port}")
            elif wanted == (inside, protocol):
                lines.append(f"{prefix}{address}:{host_port}")
    if not lines:
        what = f"port {wanted[0]}/{wanted[1]}" if wanted else "any port"
        published = sorted({p for c in containers for p in c.get("ports") or ()})
        fail(f"{target} does not publish {what}" + (f" (it publishes {', '.join(published)})" if published else ""))
    for line in lines:
        typer.echo(line)
