"""Commands of access control: `corral login`, `profile ls|use|rm`, `keys create|ls|rm`, `users ...`,
`members ls|set|rm`, `audit ls`.

Why passwords only from a prompt or standard input: a flag's value shows in `ps` and shell history (as for
`registries add`). `corral login` trades a user name and password for an account key of its own (the session it
signed in with is ended at once) and saves it in a profile of the CLI config file (cli/profiles.py), so nothing
keeps the password. A key's secret is printed once, by `keys create`, and never again.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Annotated, Any

import typer

from corral.cli import profiles
from corral.cli.main import EnvOption, OutputOption, _context, _env, _run, app
from corral.cli.output import TABLE, fail, print_table, show
from corral.client import CorralClient
from corral.client.access import AccessClient
from corral.model.admission import parse_lifetime
from corral.model.errors import CorralError

profile_app = typer.Typer(no_args_is_help=True, help="Profiles of the CLI config file (URL, key, CA, environment).")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: your account keys and environment keys.")
users_app = typer.Typer(no_args_is_help=True, help="Users (administrators only).")
members_app = typer.Typer(no_args_is_help=True, help="Members of an environment and their roles.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: who changed what, when, from where.")
app.add_typer(profile_app, name="profile")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(members_app, name="members")
app.add_typer(audit_app, name="audit")

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
RoleOption = Annotated[str, typer.Option("--role", help="owner, member, restricted or read-only.")]


def _password(from_stdin: bool, prompt: str = "Password") -> str:
    password = sys.stdin.readline().rstrip("\r\n") if from_stdin else str(typer.prompt(prompt, hide_input=True))
    if not password:
        fail("no password given")
    return password


def _when(timestamp: float | None, default: str = "-") -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp)) if timestamp else default


def _access(action: Any) -> Any:
    return _run(lambda client: action(AccessClient(client)))


# -- login and profiles -----------------------------------------------------------------------------------------


@app.command("login")
def login(
    username: Annotated[str, typer.Option("--username", "-u", prompt=True, help="Your user name.")],
    password_stdin: PasswordStdin = False,
    profile: Annotated[str, typer.Option("--save-as", help="Name of the profile to save.")] = "default",
    env: EnvOption = None,
) -> None:
    """Sign in with a user name and password; saves an account key for this machine in a profile."""
    password = _password(password_stdin)
    try:
        with CorralClient(_context.url, ca=_context.ca or None) as anonymous:
            session = AccessClient(anonymous).login(username, password)
        with CorralClient(
            _context.url, session["access_key"], session["secret_key"], ca=_context.ca or None
        ) as signed_in:
            access = AccessClient(signed_in)
            key = access.create_key(description=f"corral login on {socket.gethostname()}")
            access.logout()
    except CorralError as exc:
        fail(exc.message)
    saved = profiles.Profile(
        url=_context.url,
        access_key=key["access_key"],
        secret_key=key["secret_key"],
        ca=_context.ca,
        environment=env or "",
    )
    try:
        path = profiles.save(profile, saved)
    except CorralError as exc:
        fail(exc.message)
    typer.echo(f"signed in as {username}; profile {profile!r} saved in {path} (key {key['access_key']})")


@profile_app.command("ls")
def profile_ls(output: OutputOption = TABLE) -> None:
    """List profiles (never their secrets); * marks the current one."""
    try:
        document = profiles.load()
    except CorralError as exc:
        fail(exc.message)
    rows = [
        {"name": name, "current": name == document["current"], **{k: v for k, v in p.items() if k != "secret_key"}}
        for name, p in sorted(document["profiles"].items())
    ]
    if not output.is_table:
        return show(rows, output)
    print_table(
        ["", "NAME", "URL", "ACCESS KEY", "ENVIRONMENT"],
        [
            [
                "*" if r["current"] else "",
                r["name"],
                r.get("url", ""),
                r.get("access_key", ""),
                r.get("environment", ""),
            ]
            for r in rows
        ],
    )


@profile_app.command("use")
def profile_use(name: str) -> None:
    """Make a profile the current one."""
    try:
        profiles.use(name)
    except CorralError as exc:
        fail(exc.message)
    typer.echo(name)


@profile_app.command("rm")
def profile_rm(name: str) -> None:
    """Remove a profile from the config file (its key stays valid until `corral keys rm`)."""
    try:
        profiles.remove(name)
    except CorralError as exc:
        fail(exc.message)
    typer.echo(name)


# -- keys -------------------------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    env: Annotated[str | None, typer.Option("--env", help="An environment key for this environment only.")] = None,
    role: Annotated[
        str, typer.Option("--role", help="The environment key's role (no higher than yours).")
    ] = "read-only",
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires: Annotated[str, typer.Option(help="Lifetime: 30d, 12h, ... or never.")] = "never",
    output: OutputOption = TABLE,
) -> None:
    """Create an account key (acts as you everywhere you may go) or, with --env, an environment key.
    The secret is shown this once."""
    try:
        parse_lifetime(expires)
    except CorralError as exc:
        fail(exc.message)
    key = _access(lambda a: a.create_key(environment=env, role=role, description=description, expires=expires))
    if not output.is_table:
        return show(key, output)
    typer.echo(f"CORRAL_ACCESS_KEY={key['access_key']}")
    typer.echo(f"CORRAL_SECRET_KEY={key['secret_key']}")
    typer.echo("the secret key is shown only now: store it safely", err=True)


@keys_app.command("ls")
def keys_ls(
    env: Annotated[str | None, typer.Option("--env", help="List this environment's keys.")] = None,
    output: OutputOption = TABLE,
) -> None:
    """List your account keys, or an environment's keys (never their secrets)."""
    keys = _access(lambda a: a.list_keys(env))
    if not output.is_table:
        return show(keys, output)
    print_table(
        ["ACCESS KEY", "KIND", "ROLE", "CREATED", "LAST USED", "EXPIRES", "DESCRIPTION"],
        [
            [
                k["access_key"],
                k["kind"],
                k.get("role") or "-",
                _when(k["created_at"]),
                _when(k.get("last_used_at"), "never"),
                _when(k.get("expires_at"), "never"),
                k["description"],
            ]
            for k in keys
        ],
    )


@keys_app.command("rm")
def keys_rm(access_keys: list[str]) -> None:
    """Revoke keys at once."""
    for access_key in access_keys:
        _access(lambda a, k=access_key: a.delete_key(k))
        typer.echo(access_key)


# -- users ------------------------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: str,
    admin: Annotated[bool, typer.Option(help="An administrator of the whole server.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a local user (the password is asked for, or read with --password-stdin)."""
    password = _password(password_stdin, "New password")
    user = _access(lambda a: a.create_user(username, password, admin=admin))
    typer.echo(user["id"])


@users_app.command("ls")
def users_ls(output: OutputOption = TABLE) -> None:
    """List users."""
    users = _access(lambda a: a.users())
    if not output.is_table:
        return show(users, output)
    print_table(
        ["ID", "USERNAME", "SOURCE", "ADMIN", "STATE", "CREATED"],
        [
            [
                u["id"],
                u["username"],
                u["source"],
                "yes" if u["admin"] else "",
                "disabled" if u["disabled"] else "active",
                _when(u["created_at"]),
            ]
            for u in users
        ],
    )


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: their keys and sessions stop working at once."""
    _access(lambda a: a.update_user(username, disabled=True))
    typer.echo(username)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again (their UI sessions stay ended)."""
    _access(lambda a: a.update_user(username, disabled=False))
    typer.echo(username)


@users_app.command("passwd")
def users_passwd(username: str, password_stdin: PasswordStdin = False) -> None:
    """Reset a user's password (ends their UI sessions)."""
    password = _password(password_stdin, "New password")
    _access(lambda a: a.update_user(username, password=password))
    typer.echo(username)


@users_app.command("rm")
def users_rm(usernames: list[str]) -> None:
    """Remove users with their keys and memberships."""
    for username in usernames:
        _access(lambda a, u=username: a.delete_user(u))
        typer.echo(username)


# -- members ----------------------------------------------------------------------------------------------------


@members_app.command("ls")
def members_ls(env: EnvOption = None, output: OutputOption = TABLE) -> None:
    """List an environment's members and their roles."""
    members = _access(lambda a: a.members(_env(env)))
    if not output.is_table:
        return show(members, output)
    print_table(["KIND", "NAME", "ROLE"], [[m["kind"], m["name"], m["role"]] for m in members])


@members_app.command("set")
def members_set(
    name: Annotated[str, typer.Argument(help="A user name (or, with --group, an LDAP group).")],
    role: RoleOption,
    group: Annotated[bool, typer.Option("--group", help="NAME is an LDAP group.")] = False,
    env: EnvOption = None,
) -> None:
    """Add a member, or change their role (owners only; nobody grants a role above their own)."""
    member = _access(
        lambda a: a.set_member(_env(env), role, user=None if group else name, group=name if group else None)
    )
    typer.echo(f"{member['kind']} {member['name']}: {member['role']}")


@members_app.command("rm")
def members_rm(
    name: str,
    group: Annotated[bool, typer.Option("--group", help="NAME is an LDAP group.")] = False,
    env: EnvOption = None,
) -> None:
    """Remove a member: their access to the environment ends at once."""
    _access(lambda a: a.remove_member(_env(env), "group" if group else "user", name))
    typer.echo(name)


# -- audit ------------------------------------------------------------------------------------------------------


@audit_app.command("ls")
def audit_ls(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment (owners must name theirs).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this actor (user name or access key).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only the last 30m, 2h, 7d, ...")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries (newest first).")] = 100,
    output: OutputOption = TABLE,
) -> None:
    """List audit entries, newest first."""
    try:
        since_at = time.time() - (parse_lifetime(since, field="since") or 0) if since else None
    except CorralError as exc:
        fail(exc.message)
    entries: list[dict[str, Any]] = []
    before: int | None = None
    while len(entries) < limit:
        page = _access(
            lambda a, b=before: a.audit(
                environment=env, user=user, since=since_at, before=b, limit=min(500, limit - len(entries))
            )
        )
        entries.extend(page["data"])
        before = page["next"]
        if before is None:
            break
    if not output.is_table:
        return show(entries, output)
    print_table(
        ["TIME", "ACTOR", "AUTH", "ACTION", "RESOURCE", "RESULT", "FROM"],
        [
            [_when(e["at"]), e["actor"], e["auth_kind"], e["action"], e["resource"], e["status"], e["address"]]
            for e in entries
        ],
    )
