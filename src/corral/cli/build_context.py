"""Packing a compose `build:` context as Docker does: a tar of the folder minus what `.dockerignore` excludes.

Why deterministic: the tar's sha256 names the built image (model/builds.py), so the same files must give the same
bytes on every run and machine. Entries are sorted, owned by 0:0, dated 0 and keep only their permission bits;
file contents and symlink targets are all that count. `.dockerignore` follows Docker's rules: one pattern a line,
`#` comments, `*`, `?`, `[...]` and `**` (any number of folders), `!` re-includes, the last matching line wins, and
a pattern that matches a folder excludes everything below it. The Dockerfile and `.dockerignore` are always sent
(the builder needs them), as Docker does. A context larger than the limit is refused before anything is sent,
naming the service, the size and the limit.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from corral.model.builds import MAX_CONTEXT_BYTES, MAX_CONTEXTS_BYTES, BuildSpec
from corral.model.errors import InvalidInput

ADVICE = "list what the image does not need in the context's .dockerignore"


@dataclass(frozen=True)
class PackedContext:
    data: bytes
    digest: str  # sha256 of `data`
    files: int


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    exclude: bool  # False: a `!` line that re-includes


def _translate(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/` : zero or more folders
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def parse_dockerignore(text: str) -> list[_Rule]:
    rules: list[_Rule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        if not exclude:
            line = line[1:].strip()
        line = posixpath.normpath(line.lstrip("/")) if line.strip("/") else ""
        if not line or line == ".":
            continue
        rules.append(_Rule(_translate(line), exclude))
    return rules


def ignored(path: str, rules: list[_Rule]) -> bool:
    """Whether `path` (relative, `/`-separated) is left out: the last rule matching it or a parent folder wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for rule in rules:
        if any(rule.pattern.fullmatch(p) for p in prefixes):
            result = rule.exclude
    return result


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_context(
    folder: Path, *, dockerfile: str = "Dockerfile", service: str = "", limit: int = MAX_CONTEXT_BYTES
) -> PackedContext:
    """The context `folder` as a deterministic tar; InvalidInput naming the service for a missing folder or
    Dockerfile, or a context over `limit` bytes."""
    who = f"service {service}: " if service else ""
    if not folder.is_dir():
        raise InvalidInput(f"{who}build context {folder} is not a folder", field=f"services.{service}.build.context")
    if not (folder / dockerfile).is_file():
        raise InvalidInput(
            f"{who}build context {folder} has no {dockerfile}", field=f"services.{service}.build.dockerfile"
        )
    ignore_file = folder / ".dockerignore"
    rules = parse_dockerignore(ignore_file.read_text(errors="replace")) if ignore_file.is_file() else []
    always = {posixpath.normpath(dockerfile), ".dockerignore"}
    entries: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        rel_root = Path(root).relative_to(folder).as_posix()
        for name in sorted(dirs + names):
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if rel in always or not ignored(rel, rules):
                entries.append((rel, Path(root) / name))
    entries.sort()
    buffer = io.BytesIO()
    total = 0
    count = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel, path in entries:
            st = path.lstat()
            info = _info(rel, st)
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if total > limit:
                    raise _too_large(who, folder, f"more than {limit}", limit)
                info.size = st.st_size
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
                count += 1
    data = buffer.getvalue()
    if len(data) > limit:
        raise _too_large(who, folder, str(len(data)), limit)
    return PackedContext(data=data, digest=hashlib.sha256(data).hexdigest(), files=count)


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MiB" if count >= 1024 * 1024 else f"{count / 1024:g} KiB"


def _too_large(who: str, folder: Path, size: str, limit: int) -> InvalidInput:
    return InvalidInput(
        f"{who}build context {folder} holds {size} bytes after .dockerignore, at most {limit} "
        f"({_size(limit)}): {ADVICE}",
        field="build.context",
    )


def pack_contexts(
    base_dir: Path, builds: dict[str, BuildSpec], *, limit: int = MAX_CONTEXTS_BYTES
) -> dict[str, PackedContext]:
    """Every service's context (a folder shared by two services is packed once); InvalidInput past `limit` in all."""
    packed: dict[tuple[str, str], PackedContext] = {}
    result: dict[str, PackedContext] = {}
    for service, build in sorted(builds.items()):
        key = (posixpath.normpath(build.context), build.dockerfile)
        if key not in packed:
            packed[key] = pack_context(base_dir / build.context, dockerfile=build.dockerfile, service=service)
        result[service] = packed[key]
    total = sum(len(p.data) for p in packed.values())
    if total > limit:
        raise InvalidInput(
            f"the build contexts hold {total} bytes in all, at most {limit} per `corral up`: {ADVICE}",
            field="build.context",
        )
    return result
