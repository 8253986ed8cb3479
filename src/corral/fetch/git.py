"""Git catalog sources: clone a repository once, then fetch and check out one branch on every refresh.

Why the git CLI with an argument list: a catalog URL and branch come from API callers, so nothing reaches a shell;
only https, ssh (also scp-like `user@host:path`) and file URLs are accepted (never `ext::`, which runs commands, nor
a value starting with `-`, which git would read as an option); `--` ends the options before every positional
argument; `GIT_TERMINAL_PROMPT=0` makes a repository that wants a password fail at once instead of waiting on a
terminal, and every call has a timeout. `file` URLs read the server's own disk: the caller says whether they
are allowed (`allow_local`, from CORRAL_CATALOG_ALLOW_LOCAL), and git itself is then told not to use the protocol.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

from corral.model.errors import InvalidInput, Unavailable

GIT_TIMEOUT_SECONDS = 120.0
ALLOWED_SCHEMES = ("https", "ssh", "file")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^:]")  # git@github.com:org/repo.git
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


def redact_url(url: str) -> str:
    """The URL with the password of its user info replaced by `***` (`https://bob:s3cret@host/x` →
    `https://bob:***@host/x`): what views, errors and logs may show."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        user, host = parts.username or "", parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # not even a URL: hide whatever could be user info
        return re.sub(r"://[^/@]*@", "://***@", url)
    return urllib.parse.urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


def _secret_of(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).password or ""
    except ValueError:
        return ""


def _schemes(allow_local: bool) -> tuple[str, ...]:
    return ALLOWED_SCHEMES if allow_local else tuple(s for s in ALLOWED_SCHEMES if s != "file")


def validate_git_url(url: str, *, allow_local: bool = True) -> str:
    """The URL itself when git may fetch it; InvalidInput (field `url`) naming the allowed schemes otherwise."""
    value = url.strip()
    if not value or value.startswith("-") or any(ch in value for ch in "\n\r\0"):
        raise InvalidInput(
            f"git URL {redact_url(url)!r} is not allowed: it must not be empty or start with '-'", field="url"
        )
    scheme, sep, _rest = value.partition("://")
    if sep:
        if scheme.lower() == "file" and not allow_local:
            raise InvalidInput(
                f"git URL {redact_url(url)!r}: file:// catalogs read the server's own files and are off on this "
                "server; the operator allows them with CORRAL_CATALOG_ALLOW_LOCAL=1",
                field="url",
            )
        if scheme.lower() not in ALLOWED_SCHEMES:
            raise InvalidInput(
                f"git URL {redact_url(url)!r}: scheme {scheme!r} is not allowed (use {', '.join(ALLOWED_SCHEMES)})",
                field="url",
            )
        return value
    if "::" not in value and _SCP_LIKE.match(value):
        return value  # ssh in scp syntax
    raise InvalidInput(
        f"git URL {redact_url(url)!r} is not allowed: give an {', '.join(ALLOWED_SCHEMES)} URL (or user@host:path)",
        field="url",
    )


def validate_branch(branch: str) -> str:
    if not _BRANCH.match(branch) or ".." in branch or branch.endswith((".lock", "/")):
        raise InvalidInput(f"branch {branch!r} is not a valid branch name", field="branch")
    return branch


def refresh_checkout(url: str, branch: str, destination: Path, *, allow_local: bool = True) -> str:
    """Clone `url` into `destination` (or fetch when already there), check out `branch`; returns the commit id.

    Raises Unavailable with git's own message when git fails (unreachable, unknown branch, not a repository).
    """
    validate_git_url(url, allow_local=allow_local)
    protocols = _schemes(allow_local)
    secret = _secret_of(url)
    validate_branch(branch)
    if not (destination / ".git").is_dir():
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        clone = ["clone", "--no-checkout", "--", url, str(destination)]
        _git(clone, cwd=destination.parent, secret=secret, protocols=protocols)
    else:
        _git(["remote", "set-url", "--", "origin", url], cwd=destination, secret=secret, protocols=protocols)
    fetch = ["fetch", "--prune", "--", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"]
    _git(fetch, cwd=destination, secret=secret, protocols=protocols)
    checkout = ["checkout", "--force", "--detach", f"refs/remotes/origin/{branch}", "--"]
    _git(checkout, cwd=destination, protocols=protocols)
    return _git(["rev-parse", "HEAD"], cwd=destination, protocols=protocols).strip()


def remove_checkout(destination: Path) -> None:
    shutil.rmtree(destination, ignore_errors=True)


def _git(args: list[str], *, cwd: Path, secret: str = "", protocols: tuple[str, ...] = ALLOWED_SCHEMES) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_ALLOW_PROTOCOL": ":".join(protocols),
    }
    try:
        done = subprocess.run(
            ["git", "-c", "protocol.ext.allow=never", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            shell=False,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"git {args[0]} did not finish within {GIT_TIMEOUT_SECONDS:.0f} s") from exc
    except OSError as exc:
        raise Unavailable(f"cannot run git: {exc.strerror}") from exc
    if done.returncode != 0:
        message = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip()) or "no output"
        if secret:
            message = message.replace(secret, "***")
        raise Unavailable(f"git {args[0]} failed: {message}")
    return done.stdout
