"""A build's log as the server keeps it: bounded, with secrets masked, readable by offset.

Why bounded and counted: a build may print without end (a `RUN` in a loop), and the server keeps the logs of the
last builds of every service after they end. The log keeps its last `MAX_LOG_LINES` lines and `MAX_LOG_BYTES`
bytes (a longer line is cut to `MAX_LINE_CHARS`); `total` counts every line ever added, so a reader asks for the
lines after an offset, and the lines before `first` were cut (the views say so with `cut_marker`).
Why masked before it is kept: a build's output can print a build argument or an environment's secret (`RUN echo
$TOKEN`); values that must never be shown are replaced by `MASK` in every line and error as they arrive, so no
route, view or file ever holds them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_LOG_LINES = 2000
MAX_LOG_BYTES = 512 * 1024
MAX_LINE_CHARS = 4096
MASK = "****"
MIN_SECRET_CHARS = 3  # shorter values would mask half the log ("1", "on") and protect nothing
SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|CERT", re.IGNORECASE)


def secret_like(name: str) -> bool:
    """Whether a build argument's name says its value is a secret (`DB_PASSWORD`, `NPM_TOKEN`, `API_KEY`)."""
    return bool(SECRET_NAME.search(name))


def secret_values(args: Iterable[tuple[str, str]], others: Iterable[str] = ()) -> tuple[str, ...]:
    """The values to mask in a build's log: secret-named build arguments' and `others` (the environment's secrets
    and registry passwords), longest first, each once."""
    found = {value for name, value in args if secret_like(name)} | set(others)
    return tuple(sorted((v for v in found if len(v) >= MIN_SECRET_CHARS), key=lambda v: (-len(v), v)))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by MASK (longest first, so a secret containing another
    is masked whole)."""
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) >= MIN_SECRET_CHARS and value in text:
            text = text.replace(value, MASK)
    return text


def cut_marker(cut: int) -> str:
    limits = f"a build log keeps its last {MAX_LOG_LINES} lines and {MAX_LOG_BYTES // 1024} KiB"
    return f"[{cut} earlier line{'s' if cut != 1 else ''} cut: {limits}]"


@dataclass
class BuildLog:
    secrets: tuple[str, ...] = ()
    lines: deque[str] = field(default_factory=deque)
    total: int = 0  # lines ever added
    size: int = 0  # bytes of the kept lines (UTF-8)

    @property
    def first(self) -> int:
        """The offset of the first kept line (= how many were cut)."""
        return self.total - len(self.lines)

    def add(self, text: str) -> None:
        for raw in text.splitlines():
            line = redact(raw, self.secrets)
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + " [line cut]"
            self.lines.append(line)
            self.total += 1
            self.size += len(line.encode())
        while self.lines and (len(self.lines) > MAX_LOG_LINES or self.size > MAX_LOG_BYTES):
            self.size -= len(self.lines.popleft().encode())

    def after(self, offset: int, limit: int | None = None) -> tuple[int, list[str]]:
        """(offset of the first line returned, the kept lines from `offset` on, at most `limit`)."""
        start = max(offset, self.first)
        index = start - self.first
        end = len(self.lines) if limit is None else min(len(self.lines), index + limit)
        return start, [self.lines[i] for i in range(index, end)] if index < end else []

    def to_dict(self) -> dict[str, object]:
        return {"lines": list(self.lines), "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BuildLog:
        log = cls()
        lines = data.get("lines")
        for line in lines if isinstance(lines, list) else []:
            log.add(str(line))
        total = data.get("total")
        log.total = max(log.total, total if isinstance(total, int) else 0)
        return log
