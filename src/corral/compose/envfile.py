"""Answers files and `env_file` files: KEY=VALUE lines, and where an env file's text may come from.

Why here: both formats are line-based and their errors must name the file and line. Env files are the only thing
the compose pipeline may read from disk, and only below the compose file's directory; on the server, callers pass
their contents instead (`env_files`), because the server cannot see the client's disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from corral.compose.location import Loc
from corral.model.errors import InvalidInput

MAX_ENV_FILE_BYTES = 1024 * 1024
_ANSWER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_KEY = re.compile(r"[^\s=]+")


def parse_answers(text: str, *, file_name: str = "answers.txt") -> dict[str, str]:
    """KEY=VALUE lines; `#` comments and blank lines skipped; the value is everything after the first `=`."""
    answers: dict[str, str] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = raw.lstrip().partition("=")
        key = key.strip()
        if not sep:
            raise InvalidInput(
                f"{file_name}: line {number}: expected KEY=VALUE, got {line!r}", field=f"{file_name}:{number}"
            )
        if not _ANSWER_KEY.fullmatch(key):
            raise InvalidInput(
                f"{file_name}: line {number}: {key!r} is not a variable name (letters, digits, underscores)",
                field=f"{file_name}:{number}",
            )
        answers[key] = value.rstrip("\r\n")
    return answers


def parse_env_file(text: str, file_name: str, answers: Mapping[str, str]) -> dict[str, str]:
    """Compose's env file semantics: `KEY=VALUE`, optional `export `, quotes stripped, ` #` comments after
    unquoted values; a line with a bare `KEY` takes the value from the answers, and is left unset without one."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _ENV_KEY.fullmatch(key):
            raise InvalidInput(
                f"env file {file_name}: line {number}: {key!r} is not a valid variable name",
                field=f"{file_name}:{number}",
            )
        if sep:
            env[key] = _env_value(value)
        elif key in answers:
            env[key] = answers[key]
    return env


def _env_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] in "\"'":
        quote = value[0]
        end = value.find(quote, 1) if quote == "'" else _closing_double_quote(value)
        if end > 0:
            inner = value[1:end]
            if quote == '"':
                inner = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), inner)
            return inner
    comment = re.search(r"\s#", value)
    return value[: comment.start()].rstrip() if comment else value


def _closing_double_quote(value: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i
        i += 1
    return -1


def read_env_file(
    path: str, loc: Loc, *, env_files: Mapping[str, str], base_dir: str | None, what: str = "env file"
) -> str:
    """The text of env file `path` as written in the compose file: uploaded content first, then `base_dir`.
    `what` names the kind of file in errors (an `extends` file is read the same way)."""
    if path in env_files:
        return env_files[path]
    if base_dir is None:
        raise loc.error(f"{what} {path!r} was not provided (upload its content with the compose file)")
    if os.path.isabs(path) or path.startswith("~"):
        raise loc.error(f"{what} {path!r} must be a path relative to the compose file's directory")
    base = os.path.realpath(base_dir)
    full = os.path.realpath(os.path.join(base, path))
    if os.path.commonpath([base, full]) != base:
        raise loc.error(f"{what} {path!r} is outside the compose file's directory")
    if not os.path.isfile(full):
        raise loc.error(f"{what} {path!r} does not exist or is not a regular file")
    try:
        with open(full, "rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except OSError as exc:
        raise loc.error(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise loc.error(f"{what} {path!r} is larger than {MAX_ENV_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise loc.error(f"{what} {path!r} is not UTF-8 text") from None
