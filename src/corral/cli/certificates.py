"""Commands for environment certificates: `corral certs create|replace|ls|show|rm` (issue 19 item 3).

Why files and never flags: a key in a flag's value is visible to every user of the machine in `ps` and lands in
shell history; the certificate and key are read from PEM files (the key may come from standard input with `-`).
No command prints a key: the server never returns one. `ls` says when a certificate expires within 30 days.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.cli.main import EnvOption, OutputOption, _env, _run, app
from corral.cli.output import TABLE, Output, fail, print_table, show

MAX_PEM_BYTES = 64 * 1024
certs_app = typer.Typer(no_args_is_help=True, help="TLS certificates of an environment, for load balancers.")
app.add_typer(certs_app, name="certs")

CertFile = Annotated[str, typer.Option("--cert", help="PEM file: the certificate, then its chain.")]
KeyFile = Annotated[str, typer.Option("--key", help="PEM file of the private key (unencrypted), or - for stdin.")]


def _read(source: str) -> str:
    try:
        data = sys.stdin.buffer.read(MAX_PEM_BYTES + 1) if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")
    if len(data) > MAX_PEM_BYTES:
        fail(f"{source}: larger than {MAX_PEM_BYTES} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        fail(f"{source}: not PEM text")


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _show(cert: dict[str, Any], output: Output) -> None:
    if not output.is_table:
        return show(cert, output)
    typer.echo(cert["name"])
    if cert.get("warning"):
        typer.echo(f"warning: certificate {cert['name']} {cert['warning']}", err=True)


@certs_app.command("create")
def certs_create(
    name: Annotated[str, typer.Argument(help="Certificate name (letters, digits, '_', '.', '-').")],
    cert: CertFile,
    key: KeyFile,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Upload a certificate and its key; LB services name it in lb_config `certs` or `default_cert`."""
    cert_pem, key_pem = _read(cert), _read(key)
    _show(_run(lambda c: c.certificates.create(_env(env), name, cert_pem, key_pem)), output)


@certs_app.command("replace")
def certs_replace(
    name: Annotated[str, typer.Argument(help="Certificate name.")],
    cert: CertFile,
    key: KeyFile,
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Replace a certificate and key (a renewal); the load balancers naming it reload with the new one."""
    cert_pem, key_pem = _read(cert), _read(key)
    _show(_run(lambda c: c.certificates.replace(_env(env), name, cert_pem, key_pem)), output)


@certs_app.command("ls")
def certs_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List the environment's certificates: subject, SANs, expiry (their keys are never shown)."""
    certs = _run(lambda c: c.certificates.list(_env(env)))
    if not output.is_table:
        return show(certs, output)
    rows = [
        [c["name"], c["subject"], ",".join(c["sans"]) or "-", _date(c["not_after"]), c["warning"] or "-"] for c in certs
    ]
    print_table(["NAME", "SUBJECT", "SANS", "EXPIRES", "WARNING"], rows)


@certs_app.command("show")
def certs_show(
    name: Annotated[str, typer.Argument(help="Certificate name.")],
    env: EnvOption = None,
    output: OutputOption = TABLE,
) -> None:
    """One certificate's details (never its key)."""
    cert = _run(lambda c: c.certificates.get(_env(env), name))
    if not output.is_table:
        return show(cert, output)
    for label, value in (
        ("name", cert["name"]),
        ("subject", cert["subject"]),
        ("sans", ", ".join(cert["sans"]) or "-"),
        ("issuer", cert["issuer"]),
        ("valid", f"{_date(cert['not_before'])} to {_date(cert['not_after'])}"),
        ("sha256", cert["fingerprint"]),
        ("warning", cert["warning"] or "-"),
    ):
        typer.echo(f"{label:<8} {value}")


@certs_app.command("rm")
def certs_rm(
    names: Annotated[list[str], typer.Argument(help="Certificate names.")],
    env: EnvOption = None,
) -> None:
    """Remove certificates; a load balancer naming one stops serving its TLS ports until it exists again."""
    for name in names:
        _run(lambda c, n=name: c.certificates.delete(_env(env), n))
        typer.echo(name)
