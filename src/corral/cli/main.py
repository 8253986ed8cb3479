"""Commands: `corral env ls|create|update|rm`, `corral hosts ls|create|rm|inspect|label|approve`,
`corral tokens create|ls|rm`.

Why this shape: settings come from flags or `CORRAL_URL`, `CORRAL_ACCESS_KEY`, `CORRAL_SECRET_KEY`,
`CORRAL_CA_FILE` (the server's CA; a path or the PEM itself), `CORRAL_ENVIRONMENT` (all but the last are in the
server's `admin.env`); every list has `--format json`; every error is one line on stderr and exit code 1.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from corral.cli import profiles
from corral.cli.output import (
    JSON,
    TABLE,
    Format,
    Output,
    fail,
    parse_format,
    print_table,
    show,
    styled_state,
    wait_for,
)
from corral.client import CorralClient
from corral.client.http import CLI_RETRY_SECONDS
from corral.model.errors import CorralError, InvalidInput
from corral.model.names import parse_label_pairs
from corral.model.policy import ALL, SETTINGS, ContainerPolicy, parse_settings
from corral.model.quotas import NAMES as QUOTA_NAMES
from corral.model.quotas import parse_quotas

__all__ = ["app", "fail"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help, wrapped at the terminal's width (cli/help.py)
    help="Corral: container management for Cattle environments of real Docker hosts.",
)
env_app = typer.Typer(no_args_is_help=True, help="Environments.")
hosts_app = typer.Typer(no_args_is_help=True, help="Hosts: list, create with a driver, inspect, label, remove.")
tokens_app = typer.Typer(no_args_is_help=True, help="Registration tokens for adding custom hosts.")
app.add_typer(env_app, name="env")
app.add_typer(hosts_app, name="hosts")
app.add_typer(tokens_app, name="tokens")

FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]  # table|json only
OutputOption = Annotated[
    Output,
    typer.Option(
        "--format",
        parser=parse_format,
        metavar="FORMAT",
        show_default=False,
        help="table (default), json, or fields as '{{.name}} {{.state}}'.",
    ),
]
InspectOption = Annotated[
    Output,
    typer.Option(
        "--format", parser=parse_format, metavar="FORMAT", show_default=False, help="json (default), or fields."
    ),
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        help=f"Dangerous container settings to allow (comma-separated, repeatable): {', '.join(SETTINGS)} or all."
    ),
]
QuotaOption = Annotated[
    list[str] | None,
    typer.Option(
        help=f"Quotas as NAME=LIMIT (comma-separated, repeatable; LIMIT 'default' for the server's): "
        f"{', '.join(QUOTA_NAMES)}."
    ),
]
EnvOption = Annotated[
    str | None, typer.Option("--env", envvar="CORRAL_ENVIRONMENT", help="Environment name or id.", show_envvar=True)
]


@dataclass
class Context:
    url: str
    access_key: str
    secret_key: str
    ca: str = ""
    environment: str = ""  # the profile's default environment
    _warned: bool = False

    def client(self) -> CorralClient:
        if not self.access_key or not self.secret_key:
            fail(
                "no API key: run `corral login`, or set CORRAL_ACCESS_KEY and CORRAL_SECRET_KEY "
                "(see admin.env in the server's data dir)"
            )
        if self.url.lower().startswith("http://") and not self._warned:
            self._warned = True
            typer.echo(
                f"warning: {self.url} is plain HTTP: the API key crosses the network in clear (use https://)",
                err=True,
            )
        try:
            return CorralClient(
                self.url, self.access_key, self.secret_key, ca=self.ca or None, retry_seconds=CLI_RETRY_SECONDS
            )
        except CorralError as exc:
            fail(exc.message)


DEFAULT_URL = "https://127.0.0.1:8080"
_context = Context(url=DEFAULT_URL, access_key="", secret_key="")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"corral {version('corral')}")
        raise typer.Exit(0)


@app.callback()
def _configure(
    url: Annotated[str, typer.Option(envvar="CORRAL_URL", help=f"Server URL [default: {DEFAULT_URL}].")] = "",
    access_key: Annotated[str, typer.Option(envvar="CORRAL_ACCESS_KEY", help="API access key.")] = "",
    secret_key: Annotated[str, typer.Option(envvar="CORRAL_SECRET_KEY", help="API secret key.")] = "",
    ca: Annotated[
        str, typer.Option("--ca", envvar="CORRAL_CA_FILE", help="The server's CA certificate (file or PEM).")
    ] = "",
    profile: Annotated[
        str | None, typer.Option(envvar="CORRAL_PROFILE", help="Profile of the CLI config file (`corral login`).")
    ] = None,
    _version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    try:
        saved = profiles.profile(profile)
    except CorralError as exc:
        fail(exc.message)
    _context.url = url or saved.url or DEFAULT_URL
    _context.access_key, _context.secret_key = (
        (access_key, secret_key) if access_key else (saved.access_key, saved.secret_key)
    )
    _context.ca = ca or saved.ca
    _context.environment = saved.environment


def _env(value: str | None) -> str:
    return value or _context.environment or "default"


def _context_client() -> CorralClient:
    return _context.client()


def call_server(action: Any) -> Any:
    """Call the server with the CLI's settings; any Corral error becomes one line and exit code 1."""
    return _run(action)


def _run(action: Any) -> Any:
    """Call the server; any Corral error becomes one line and exit code 1."""
    try:
        with _context.client() as client:
            return action(client)
    except CorralError as exc:
        fail(exc.message)


# -- environments ---------------------------------------------------------------------------------------------


@env_app.command("ls")
def env_ls(output: OutputOption = TABLE) -> None:
    """List environments."""
    envs = _run(lambda c: c.list_environments())
    show(envs, output, lambda: _env_table(envs))


def _env_table(envs: list[dict[str, Any]]) -> None:
    print_table(
        ["ID", "NAME", "ORCHESTRATION", "SUBNET", "ALLOWS", "APPROVAL", "QUOTAS", "DESCRIPTION"],
        [
            [
                e["id"],
                e["name"],
                e["orchestration"],
                e.get("network", {}).get("subnet", ""),
                ",".join(e.get("allow", [])) or "-",
                "required" if e.get("require_approval") else "-",
                _quota_short(e),
                e["description"],
            ]
            for e in envs
        ],
    )


class OnOff(enum.StrEnum):
    on = "on"
    off = "off"


@env_app.command("create")
def env_create(
    name: str,
    orchestration: Annotated[str, typer.Option(help="Orchestration type.")] = "cattle",
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    subnet: Annotated[str | None, typer.Option(help="Overlay subnet (CIDR); default: the server's.")] = None,
    host_prefix: Annotated[int | None, typer.Option(help="Prefix length of each host's slice (default 24).")] = None,
    mtu: Annotated[
        int | None, typer.Option(help="MTU inside the overlay (default 1420 encrypted, 1450 plain).")
    ] = None,
    overlay_encryption: Annotated[
        OnOff, typer.Option(help="Encrypt traffic between hosts (WireGuard); off: plain VXLAN for trusted networks.")
    ] = OnOff.on,
    allow: AllowOption = None,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="New hosts stay pending until `corral hosts approve`.")
    ] = False,
    quota: QuotaOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Create an environment (with its managed overlay network); it allows no dangerous setting unless --allow,
    and has the server's quotas unless --quota."""
    given: dict[str, object] = {"subnet": subnet, "host_prefix": host_prefix, "mtu": mtu}
    network = {key: value for key, value in given.items() if value is not None}
    if overlay_encryption is OnOff.off:
        network["encryption"] = False
    allowed = sorted(_settings(allow or []))
    quotas = _quotas(quota or [])
    env = _run(
        lambda c: c.create_environment(
            name,
            orchestration,
            description,
            network=network or None,
            allow=allowed,
            require_approval=require_approval,
            quotas=quotas,
        )
    )
    show(env, output, lambda: typer.echo(env["id"]))


@env_app.command("update")
def env_update(
    name: str,
    allow: AllowOption = None,
    deny: Annotated[
        list[str] | None, typer.Option(help="Settings to allow no more (comma-separated, repeatable).")
    ] = None,
    lock: Annotated[bool, typer.Option("--lock", help="Allow no dangerous setting (before any --allow).")] = False,
    require_approval: Annotated[
        bool | None,
        typer.Option("--require-approval/--no-require-approval", help="Whether new hosts wait for approval."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    quota: QuotaOption = None,
    output: OutputOption = TABLE,
) -> None:
    """Change an environment's description, the dangerous container settings it allows, host approval or quotas."""
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = description
    if require_approval is not None:
        changes["require_approval"] = require_approval
    if quota:
        changes["quotas"] = _quotas(quota)
    if allow or deny or lock:
        current = frozenset() if lock else frozenset(_run(lambda c: c.get_environment(name)).get("allow", []))
        changes["allow"] = _updated_settings(current, _settings(allow or []), _settings(deny or []))
    if not changes:
        fail("nothing to change: give --allow, --deny, --lock, --[no-]require-approval, --quota or --description")
    env = _run(lambda c: c.update_environment(name, **changes))
    show(env, output, lambda: _print_env_changes(env, changes))


def _print_env_changes(env: dict[str, Any], changes: dict[str, Any]) -> None:
    if "allow" in changes or "description" in changes:
        typer.echo(f"{env['name']}: allows {', '.join(env.get('allow', [])) or 'no dangerous setting'}")
    if "require_approval" in changes:
        typer.echo(f"{env['name']} approval {'required' if env.get('require_approval') else 'not required'}")
    if "quotas" in changes:
        typer.echo(f"{env['name']}: quotas {_quota_text(env)}")


def _quotas(values: list[str]) -> dict[str, int | None]:
    try:
        return parse_quotas(values)
    except InvalidInput as exc:
        fail(exc.message)


def _quota_short(env: dict[str, Any]) -> str:
    """`services 200/1000 containers 5000/10000` (per stack / per environment), for the table."""
    q = env.get("quotas", {})
    if not q:
        return "-"
    return (
        f"services {q.get('services_per_stack')}/{q.get('services_per_environment')} "
        f"containers {q.get('containers_per_stack')}/{q.get('containers_per_environment')}"
    )


def _quota_text(env: dict[str, Any]) -> str:
    """`services_per_stack=200,...`; an environment's own limits are marked with `*`."""
    own = env.get("quota_overrides", {})
    return ",".join(f"{k}={v}{'*' if k in own else ''}" for k, v in env.get("quotas", {}).items()) or "-"


def _settings(values: list[str]) -> frozenset[str]:
    try:
        return parse_settings(values)
    except InvalidInput as exc:
        fail(exc.message)


def _updated_settings(current: frozenset[str], add: frozenset[str], remove: frozenset[str]) -> list[str]:
    """The allowed set after adding and removing (removing one setting from `all` keeps the others)."""
    current = current | add
    if remove:
        expanded = frozenset(SETTINGS) if ALL in current else current
        current = frozenset() if ALL in remove else expanded - remove
    return ContainerPolicy(current).names()


@env_app.command("rm")
def env_rm(names: Annotated[list[str], typer.Argument(help="Environment names or ids.")]) -> None:
    """Remove environments, with all their hosts."""
    for name in names:
        _run(lambda c, n=name: c.delete_environment(n))
        typer.echo(name)


# -- hosts ----------------------------------------------------------------------------------------------------


def _host_row(h: dict[str, Any]) -> list[Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(h["labels"].items()))
    state = styled_state(h["state"])
    if h.get("state_reason") and h["state"] != "active":
        state += f" ({h['state_reason']})"
    if h.get("evacuating"):
        state += " (evacuating)"
    elif not h.get("schedulable", True):
        state += " (inactive)"
    return [
        h["name"],
        state,
        h["arch"] or "-",
        h["address"] or "-",
        h["facts"].get("engine_version") or "-",
        h["container_count"],
        _overlay_cell(h.get("overlay") or {}),
        labels,
    ]


def _overlay_cell(overlay: dict[str, Any]) -> str:
    """The NETWORK column: "ok", "broken: h2, h3" (a pair broken from either side), "-" before any report."""
    broken = overlay.get("broken") or []
    if broken:
        return "broken: " + ", ".join(broken)
    return "ok" if overlay.get("reported") else "-"


@hosts_app.command("ls")
def hosts_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List the hosts of an environment."""
    hosts = _run(lambda c: c.list_hosts(_env(env)))
    columns = ["NAME", "STATE", "ARCH", "IP", "ENGINE", "CONTAINERS", "NETWORK", "LABELS"]
    show(hosts, output, lambda: print_table(columns, [_host_row(h) for h in hosts]))


@hosts_app.command("create")
def hosts_create(
    name: str,
    driver: Annotated[str, typer.Option(help="Host driver.")] = "local",
    env: EnvOption = None,
    label: Annotated[list[str] | None, typer.Option(help="Host label KEY=VALUE (repeatable).")] = None,
    arch: Annotated[str | None, typer.Option(help="Declared architecture (x86_64, aarch64, armv7l).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the host is active.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 180.0,
    output: OutputOption = TABLE,
) -> None:
    """Create a host with a driver (`local`: a network namespace with its own dockerd and agent)."""
    try:
        labels = parse_label_pairs(label or [])
    except CorralError as exc:
        fail(exc.message)
    host = _run(lambda c: c.create_host(_env(env), name, driver=driver, labels=labels, arch=arch))
    if wait:
        host = _wait_active(host["id"], timeout)
    show(host, output, lambda: typer.echo(f"{host['name']} {host['state']} {host['address']}"))


def _wait_active(host_id: str, timeout: float) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        latest.update(_run(lambda c: c.get_host(host_id)))
        if latest["state"] == "error":
            fail(f"host {latest['name']} failed: {latest['state_reason']}")
        return latest["state"] == "active", latest["state"]

    wait_for(f"waiting for host {host_id} to become active", check, timeout=timeout)
    return latest


@hosts_app.command("inspect")
def hosts_inspect(name: str, env: EnvOption = None, output: InspectOption = JSON) -> None:
    """Show everything known about a host, as JSON."""
    show(_run(lambda c: c.find_host(_env(env), name)), output)


@hosts_app.command("label")
def hosts_label(
    name: str,
    labels: Annotated[list[str], typer.Argument(help="KEY=VALUE to set, KEY- to remove.")],
    env: EnvOption = None,
) -> None:
    """Edit a host's labels."""

    def action(c: CorralClient) -> dict[str, Any]:
        host = c.find_host(_env(env), name)
        current = dict(host["labels"])
        for item in labels:
            if item.endswith("-") and "=" not in item:
                current.pop(item[:-1], None)
            else:
                current.update(parse_label_pairs([item]))
        return c.update_host_labels(host["id"], current)

    host = _run(action)
    typer.echo(",".join(f"{k}={v}" for k, v in sorted(host["labels"].items())))


def _host_action(action: str, names: list[str], env: str | None) -> None:
    for name in names:
        host = _run(lambda c, n=name: c.host_action(c.find_host(_env(env), n)["id"], action))
        typer.echo(f"{host['name']} {'schedulable' if host['schedulable'] else 'not schedulable'}")


@hosts_app.command("deactivate")
def hosts_deactivate(
    names: Annotated[list[str], typer.Argument(help="Host names or ids.")], env: EnvOption = None
) -> None:
    """Stop placing containers on hosts (the ones they run stay)."""
    _host_action("deactivate", names, env)


@hosts_app.command("evacuate")
def hosts_evacuate(
    names: Annotated[list[str], typer.Argument(help="Host names or ids.")], env: EnvOption = None
) -> None:
    """Deactivate hosts and move their containers to other hosts."""
    _host_action("evacuate", names, env)


@hosts_app.command("activate")
def hosts_activate(
    names: Annotated[list[str], typer.Argument(help="Host names or ids.")], env: EnvOption = None
) -> None:
    """Let containers be placed on hosts again."""
    _host_action("activate", names, env)


@hosts_app.command("approve")
def hosts_approve(
    names: Annotated[list[str], typer.Argument(help="Host names or ids.")], env: EnvOption = None
) -> None:
    """Admit hosts waiting for approval (reject one with `corral hosts rm`)."""
    for name in names:
        host = _run(lambda c, n=name: c.host_action(c.find_host(_env(env), n)["id"], "approve"))
        typer.echo(f"{host['name']} {host['state']}")


@hosts_app.command("rm")
def hosts_rm(names: Annotated[list[str], typer.Argument(help="Host names or ids.")], env: EnvOption = None) -> None:
    """Remove hosts; for driver-created hosts this also tears the machine down."""
    for name in names:
        _run(lambda c, n=name: c.delete_host(c.find_host(_env(env), n)["id"]))
        typer.echo(name)


# -- registration tokens --------------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    env: EnvOption = None,
    once: Annotated[bool, typer.Option("--once", help="The token admits one host only.")] = False,
    max_uses: Annotated[int | None, typer.Option(help="How many hosts it may admit (default: unlimited).")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime such as 2h, 7d or never (default: 24h).", metavar="DURATION")
    ] = None,
    description: Annotated[str, typer.Option(help="Free text, shown in `tokens ls`.")] = "",
    output: OutputOption = TABLE,
) -> None:
    """Create a registration token and print the command that adds a host with it."""
    if once and max_uses not in (None, 1):
        fail("--once and --max-uses contradict each other; give one")
    uses = 1 if once else max_uses
    token = _run(lambda c: c.create_registration_token(_env(env), description, expires=expires, max_uses=uses))
    if token.get("warning"):
        typer.echo(f"warning: {token['warning']}", err=True)
    show(token, output, lambda: typer.echo(token["command"]))


def _when(timestamp: float | None, default: str = "-") -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp)) if timestamp else default


@tokens_app.command("ls")
def tokens_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List registration tokens with their state (their secrets are never shown again)."""
    tokens = _run(lambda c: c.list_registration_tokens(_env(env)))
    show(tokens, output, lambda: _tokens_table(tokens))


def _tokens_table(tokens: list[dict[str, Any]]) -> None:
    print_table(
        ["ID", "STATE", "USES", "EXPIRES", "CREATED", "DESCRIPTION"],
        [
            [
                t["id"],
                styled_state(t["state"]),
                f"{t['uses']}/{t['max_uses'] if t['max_uses'] is not None else 'unlimited'}",
                _when(t["expires_at"], "never"),
                _when(t["created_at"]),
                t["description"],
            ]
            for t in tokens
        ],
    )


@tokens_app.command("rm")
def tokens_rm(token_ids: list[str]) -> None:
    """Revoke registration tokens: they admit no more hosts (and stay listed as revoked)."""
    for token_id in token_ids:
        _run(lambda c, t=token_id: c.delete_registration_token(t))
        typer.echo(token_id)
