"""Commands for the hosts' images: `corral images ls|rm` (issue 18; `docker images` across an environment's hosts).

Why per host: an image exists per engine, so `ls` has a HOST column and `rm` names the host. `rm` resolves what the
user typed (a tag such as `corral/busybox`, an id or an id prefix) against the host's list first and removes by id,
so tags with a registry path work and an ambiguous prefix is refused before anything is asked of the host.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, OutputOption, _env, _run, app
from corral.cli.output import TABLE, fail, print_table, show
from corral.cli.stats import human_bytes
from corral.client import CorralClient
from corral.model.image_inventory import ObservedImage, find_image

images_app = typer.Typer(no_args_is_help=True, help="Images on the environment's hosts: sizes, who uses them.")
app.add_typer(images_app, name="images")


def _ago(created: object) -> str:
    if not isinstance(created, int | float) or created <= 0:
        return "-"
    seconds = max(0, int(time.time() - created))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} seconds ago"


def _row(image: dict[str, Any]) -> list[str]:
    return [
        image["host_name"],
        ",".join(image["tags"]) or "<none>",
        image["short_id"],
        human_bytes(image["size"]),
        _ago(image["created"]),
        ",".join(image["containers"]) or "-",
    ]


@images_app.command("ls")
def images_ls(
    env: EnvOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Only this host's images (name or id).")] = None,
    in_use: Annotated[
        bool | None, typer.Option("--in-use/--unused", help="Only images containers use, or only unused ones.")
    ] = None,
    output: OutputOption = TABLE,
) -> None:
    """List the images of every host of the environment (as each agent last reported them)."""
    images = _run(lambda c: c.images.list(_env(env), host=host, in_use=in_use))
    columns = ["HOST", "TAGS", "IMAGE ID", "SIZE", "CREATED", "CONTAINERS"]
    show(images, output, lambda: print_table(columns, [_row(i) for i in images]))


def _remove(client: CorralClient, environment: str, host_ref: str, ref: str) -> str:
    host = client.find_host(environment, host_ref)
    listed = client.images.list(environment, host=host["id"])
    observed = [ObservedImage(id=i["id"], tags=tuple(i["tags"])) for i in listed]
    found = find_image(observed, ref)
    if found is None:
        fail(f"host {host['name']} lists no image {ref!r} (or several match: give more of the id)")
    client.images.delete(host["id"], found.id)
    return found.id


@images_app.command("rm")
def images_rm(
    images: Annotated[list[str], typer.Argument(help="Image tags, ids or id prefixes (12+ hex digits).")],
    host: Annotated[str, typer.Option("--host", help="The host to remove them from (name or id).")],
    env: EnvOption = None,
) -> None:
    """Remove unused images from a host (never forced: refused while a container, even stopped, uses one)."""
    for ref in images:
        removed = _run(lambda c, r=ref: _remove(c, _env(env), host, r))
        typer.echo(f"Deleted: {removed}")
