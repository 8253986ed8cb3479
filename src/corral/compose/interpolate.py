"""`${VAR}` interpolation of compose values, with compose's operators, from the given answers only.

Why answers only and never `os.environ`: the server interpolates files uploaded by users, and its own environment
(database URLs, secrets) must not leak into containers. Why a hand-written scanner rather than `string.Template`:
compose's syntax has operators (`:-`, `-`, `:?`, `?`, `:+`, `+`) and nesting inside defaults
(`${A:-${B}}`), and defaults are evaluated only when used, so an unused default never warns about its variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.compose.location import Loc, dotted

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class _Invalid(Exception):
    """Raised inside the scanner; turned into an `InvalidInput` naming the field by `Interpolator`."""


@dataclass
class Interpolator:
    """Interpolates strings for one file and remembers unset variables (with their first use) for warnings."""

    variables: Mapping[str, str]
    unset: dict[str, Loc] = field(default_factory=dict)

    def value(self, value: Any, loc: Loc) -> Any:
        """Return a copy of `value` with every string inside interpolated (mapping keys are left alone)."""
        if isinstance(value, str):
            return self.string(value, loc)
        if isinstance(value, dict):
            return {k: self.value(v, loc.key(str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, loc.key(i)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, loc: Loc) -> str:
        if "$" not in text:
            return text
        try:
            return self._scan(text, loc)
        except _Invalid as exc:
            raise loc.error(f"{exc} in {text!r} (write $$ for a literal $)") from None

    def warnings(self) -> list[str]:
        return [
            f"{loc.file}: variable {name!r} is not set (first used at {dotted(loc.path) or loc.file}); "
            "an empty string was used"
            for name, loc in self.unset.items()
        ]

    # -- scanner ---------------------------------------------------------------------------------------------------

    def _scan(self, text: str, loc: Loc) -> str:
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            dollar = text.find("$", i)
            if dollar < 0:
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            if dollar + 1 >= n:
                raise _Invalid("a lone '$' at the end")
            nxt = text[dollar + 1]
            if nxt == "$":
                out.append("$")
                i = dollar + 2
            elif nxt == "{":
                end = _closing_brace(text, dollar + 2)
                out.append(self._braced(text[dollar + 2 : end], loc))
                i = end + 1
            else:
                match = _NAME.match(text, dollar + 1)
                if match is None:
                    raise _Invalid(f"invalid interpolation '${nxt}'")
                out.append(self._lookup(match.group(), loc))
                i = match.end()
        return "".join(out)

    def _braced(self, body: str, loc: Loc) -> str:
        match = _NAME.match(body)
        if match is None:
            raise _Invalid(f"invalid interpolation '${{{body}}}'")
        name = match.group()
        rest = body[match.end() :]
        if not rest:
            return self._lookup(name, loc)
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise _Invalid(f"invalid interpolation '${{{body}}}'")
        argument = rest[len(operator) :]
        value = self.variables.get(name)
        missing = value is None or (operator.startswith(":") and value == "")
        if operator in (":-", "-"):
            return self._scan(argument, loc) if missing else str(value)
        if operator in (":+", "+"):
            return "" if missing else self._scan(argument, loc)
        if missing:
            reason = self._scan(argument, loc) if argument else "it is required"
            raise loc.error(f"required variable {name!r} is missing a value: {reason}")
        return str(value)

    def _lookup(self, name: str, loc: Loc) -> str:
        value = self.variables.get(name)
        if value is None:
            self.unset.setdefault(name, loc)
            return ""
        return str(value)


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` whose body starts at `start` (nested `${...}` and `$$` skipped)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text) and text[i + 1] in "${":
            if text[i + 1] == "{":
                depth += 1
            i += 2
            continue
        if ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise _Invalid("an unterminated '${'")
