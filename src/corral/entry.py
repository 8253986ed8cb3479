"""The `corral` command: the CLI's client verbs plus the two long-running processes, `server` and `agent`.

Why a module above the layers: the CLI may speak to the server only through the client (import-linter checks it),
yet one executable must also start the server and the agent. This module composes the three and nothing else.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from corral.cli import access as _access_commands  # noqa: F401 - `login`, `keys`, `users`, `members`, `audit`
from corral.cli import catalog as _catalog_commands  # noqa: F401 - registers `catalog ...`
from corral.cli import catalog_commands as _catalog_more  # noqa: F401 - `catalog ls|show|install|upgrade|...`
from corral.cli import certificates as _certificate_commands  # noqa: F401 - registers `certs ...`
from corral.cli import completion as _completion_command  # noqa: F401 - registers `completion`
from corral.cli import compose_commands as _compose_commands  # noqa: F401 - registers `config`, `export`
from corral.cli import events as _event_commands  # noqa: F401 - registers `events`
from corral.cli import images as _image_commands  # noqa: F401 - registers `images ls|rm`
from corral.cli import ops as _ops_commands  # noqa: F401 - registers `down`, `wait`, `port`
from corral.cli import pulls as _pull_command  # noqa: F401 - registers `pull`
from corral.cli import registries as _registry_commands  # noqa: F401 - registers `registries ...`
from corral.cli import run as _run_command  # noqa: F401 - registers `run`
from corral.cli import secrets as _secret_commands  # noqa: F401 - registers `secrets ...`
from corral.cli import stacks as _stack_commands  # noqa: F401 - registers `up`, `ps`, ...
from corral.cli import stats as _stats_command  # noqa: F401 - registers `stats`
from corral.cli import volumes as _volume_commands  # noqa: F401 - registers `volume ...`
from corral.cli.help import build
from corral.cli.main import app, call_server, fail
from corral.model.errors import CorralError
from corral.model.names import parse_label_pairs

server_app = typer.Typer(help="Run the Corral server, or manage its certificate.")
app.add_typer(server_app, name="server")


@server_app.callback(invoke_without_command=True)
def server_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    insecure_http: Annotated[
        bool,
        typer.Option(
            envvar="CORRAL_INSECURE_HTTP", help="Serve plain HTTP instead of HTTPS (keys cross the network in clear)."
        ),
    ] = False,
    tls_san: Annotated[
        list[str] | None,
        typer.Option(help="Another name or address for the server certificate (repeatable; CORRAL_TLS_SANS)."),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Serve this certificate (PEM) instead of the own CA's.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key of --tls-cert.")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="The CA that issued --tls-cert (agents pin it).")] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option(
            help="URL other machines reach the server at, for agent commands (CORRAL_ADVERTISE_URL).", metavar="URL"
        ),
    ] = None,
) -> None:
    """Run the Corral server (REST API, event stream, agent hub) over HTTPS with its own CA."""
    if ctx.invoked_subcommand is not None:
        return
    # imported here, not at the top: the CLI's client verbs start without loading the server, FastAPI and the UI
    # (nor pydantic-settings, a quarter of a second of every CLI call's start)
    from corral.config import load_settings
    from corral.server.run import run_server
    from corral.web import mount_ui

    settings = load_settings()
    update: dict[str, object] = {}
    if insecure_http:
        update["insecure_http"] = True
    if tls_san:
        update["tls_sans"] = ",".join([settings.tls_sans, *tls_san]).strip(",")
    if advertise_url is not None:
        update["advertise_url"] = advertise_url
    for key, value in (("tls_cert", tls_cert), ("tls_key", tls_key), ("tls_ca", tls_ca)):
        if value is not None:
            update[key] = str(value)
    raise typer.Exit(run_server(host, port, settings.model_copy(update=update), extend=mount_ui))


@server_app.command("rotate-cert")
def rotate_cert_command() -> None:
    """Issue a new server certificate from the server's CA; the running server serves it from the next handshake
    and its agents reconnect (they pin the CA, so none needs a restart). Uses CORRAL_URL and the admin key."""
    info = call_server(lambda client: client.rotate_server_certificate())
    typer.echo(
        f"new server certificate: serial {info['serial']:x}, valid until {info['not_after']}, "
        f"CA {info['ca_digest']}; {info['agents_reconnecting']} agents reconnecting"
    )


@server_app.command("rotate-ca")
def rotate_ca_command(
    wait: Annotated[float, typer.Option(help="Seconds to wait for the agents to confirm (0: do not wait).")] = 60.0,
) -> None:
    """Replace the server's CA: connected agents learn the new CA over their pinned connection and confirm it; then
    the server serves a certificate of the new CA and the old one is dropped (no agent restarts, no re-register).
    Until then the CLI trusts both through admin.env's CA file. Uses CORRAL_URL and the admin key."""
    status = call_server(lambda client: client.rotate_ca())
    typer.echo(f"next CA {status['next_ca_digest'] or status['ca_digest']}")
    deadline = time.monotonic() + wait
    while status["state"] == "rotating" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = call_server(lambda client: client.ca_rotation())
    if status["state"] == "rotating":
        typer.echo(
            f"still waiting for {len(status['waiting_for'])} agents to confirm ({', '.join(status['waiting_for'])}); "
            f"the server switches when they do or in {status['deadline_seconds']:g} s"
        )
        raise typer.Exit(1)
    typer.echo(f"CA rotated: {status['ca_digest']}; join tokens carry this digest from now on")


@app.command("agent")
def agent_command(
    url: Annotated[str, typer.Option(help="Server URL, e.g. https://10.0.0.5:8080.")],
    token: Annotated[
        str | None, typer.Option(help="Join token CORRAL1-<CA digest>-<secret> (needed only the first time).")
    ] = None,
    ca_digest: Annotated[
        str | None, typer.Option(help="Trust the server whose CA has this digest (sha256:<hex>).")
    ] = None,
    ca: Annotated[Path | None, typer.Option(help="Trust the server whose certificate this CA file issued.")] = None,
    insecure: Annotated[bool, typer.Option(help="Allow an http:// server URL (no TLS).")] = False,
    state_dir: Annotated[Path | None, typer.Option(help="Where the agent keeps its credentials.")] = None,
    docker_host: Annotated[str, typer.Option(help="Docker engine to drive.")] = "unix:///var/run/docker.sock",
    label: Annotated[list[str] | None, typer.Option(help="Host label KEY=VALUE (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Host name (default: this machine's hostname).")] = None,
) -> None:
    """Run the agent on this host: register once, then stay connected to the server."""
    from corral.agent.run import run_agent  # here, not at the top: the CLI's client verbs never load the agent
    from corral.config import load_settings

    settings = load_settings()
    try:
        labels = parse_label_pairs(label or [])
    except CorralError as exc:
        fail(exc.message)
    code = run_agent(
        url=url.rstrip("/"),
        token=token,
        state_dir=state_dir or settings.data_dir / "agent",
        docker_host=docker_host,
        labels=labels,
        name=name,
        settings=settings,
        ca_digest=ca_digest,
        ca_file=ca,
        insecure=insecure,
    )
    raise typer.Exit(code)


def main() -> None:
    """Run the command; usage errors (unknown flag, missing argument) are one line on stderr and exit code 1."""
    try:
        result = build(app).main(prog_name="corral", standalone_mode=False)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as exc:  # click's usage errors, as vendored by typer
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", "corral")
        print(f"error: {message} (see '{command} --help')", file=sys.stderr)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
