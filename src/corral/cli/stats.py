"""`corral stats [CONTAINER|STACK/SERVICE|STACK] [--no-stream]`: CPU, memory and network use, as `docker stats`.

Why a thread per container: each container's samples come on a stream of its own (`GET /v1/containers/{id}/stats`,
relayed from its host's agent, about one a second); the table shows the latest of each and is redrawn once a
second (in place on a terminal, a table per second when piped); `--format json` or a template prints each sample
as it comes, one line each. The command ends when every stream has (the containers stopped) or on Ctrl-C.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from corral.cli.main import EnvOption, OutputOption, _context_client, _env, _run, app
from corral.cli.output import TABLE, Output, console, fail, print_table, show
from corral.client import CorralClient
from corral.model.errors import CorralError

COLUMNS = ["NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "HOST"]
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: float) -> str:
    """`1.5MiB`, as `docker stats` shows sizes."""
    amount = float(value)
    for unit in UNITS:
        if abs(amount) < 1024 or unit == UNITS[-1]:
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.2f}{unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def record(container: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    """One sample with the container it is of (what `--format json` prints and a template selects from)."""
    where = {k: container.get(k, "") for k in ("id", "name", "stack", "service", "host")}
    return {**where, **sample}


def row(sample: dict[str, Any]) -> list[str]:
    return [
        sample["name"],
        f"{sample.get('cpu_percent', 0.0):.2f}%",
        f"{human_bytes(sample.get('memory_usage', 0))} / {human_bytes(sample.get('memory_limit', 0))}",
        f"{sample.get('memory_percent', 0.0):.2f}%",
        f"{human_bytes(sample.get('network_rx', 0))} / {human_bytes(sample.get('network_tx', 0))}",
        sample.get("host") or "-",
    ]


def _targets(client: CorralClient, environment: str, target: str | None) -> list[dict[str, Any]]:
    """The running containers TARGET names (every running one of the environment without a target)."""
    if target is None:
        found = client.stacks.containers(environment, state="running")
    elif "/" in target:
        found = client.stacks.find_service(environment, target)["containers"]
    else:
        try:
            found = [client.stacks.find_container(environment, target)]
        except CorralError:
            stack = client.stacks.find(environment, target)
            found = [c for s in stack["services"] for c in s["containers"]]
    return [c for c in found if c["state"] == "running" and c.get("docker_id") and not c.get("retired")]


@app.command("stats")
def stats(
    target: Annotated[str | None, typer.Argument(help="CONTAINER, STACK/SERVICE or STACK (default: all).")] = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Print one sample of each and exit.")] = False,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Show the CPU, memory and network use of running containers, live (one sample each with --no-stream)."""
    containers = _run(lambda c: _targets(c, _env(env), target))
    if not containers:
        fail(f"no running container{f' in {target}' if target else ''}")
    if no_stream:
        records = [record(c, s) for c, s in zip(containers, _run(lambda cl: _one_each(cl, containers)), strict=True)]
        return show(records, output, lambda: print_table(COLUMNS, [row(r) for r in records]))
    _stream(containers, output)


def _one_each(client: CorralClient, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [next(iter(client.stacks.stats(c["id"], stream=False)), {}) for c in containers]


def _stream(containers: list[dict[str, Any]], output: Output) -> None:
    samples: queue.Queue[dict[str, Any] | str] = queue.Queue()  # a sample, or the name of a finished stream
    failures: list[str] = []

    def pump(container: dict[str, Any]) -> None:
        try:
            with _context_client() as client:
                for sample in client.stacks.stats(container["id"], stream=True):
                    samples.put(record(container, sample))
        except CorralError as exc:
            failures.append(f"{container['name']}: {exc.message}")
        finally:
            samples.put(container["id"])

    for container in containers:
        threading.Thread(target=pump, args=(container,), daemon=True).start()
    try:
        if output.is_table:
            _tables(samples, containers)
        else:
            for sample in _until_done(samples, len(containers)):
                show([sample], output)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if failures:
        fail("; ".join(failures))


def _until_done(samples: queue.Queue[dict[str, Any] | str], streams: int) -> Any:
    running = streams
    while running:
        item = samples.get()
        if isinstance(item, str):
            running -= 1
        else:
            yield item


def _tables(samples: queue.Queue[dict[str, Any] | str], containers: list[dict[str, Any]]) -> None:
    latest: dict[str, dict[str, Any]] = {}
    running = len(containers)

    def table() -> Table:
        drawn = Table(box=None, header_style="bold", pad_edge=False)
        for column in COLUMNS:
            drawn.add_column(column)
        for container in containers:
            if container["id"] in latest:
                drawn.add_row(*row(latest[container["id"]]))
        return drawn

    live = Live(table(), console=console, auto_refresh=False) if console.is_terminal else None
    if live is not None:
        live.start()
    try:
        while running:
            deadline = time.monotonic() + 1.0
            while running and (left := deadline - time.monotonic()) > 0:
                try:
                    item = samples.get(timeout=left)
                except queue.Empty:
                    break
                if isinstance(item, str):
                    running -= 1
                else:
                    latest[item["id"]] = item
            if live is not None:
                live.update(table(), refresh=True)
            elif latest:
                console.print(table(), highlight=False)
                console.print()
    finally:
        if live is not None:
            live.stop()
