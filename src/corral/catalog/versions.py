"""Template version comparisons and `upgrade_from` ranges.

Why our own small grammar: catalogs write `upgrade_from` as one version (`"1.0.0"`, `"2.3.7-build.11"`), a
comparison (`">=1.0.0"`), comparisons joined by spaces (all must hold) and alternatives joined by `||` (any may
hold): `">1.0 <2.0 || >3.0"`. Versions compare part by part, numbers as numbers (`1.10 > 1.9`), missing parts as 0,
and a pre-release (`1.0.0-rc1`) before its release.
"""

from __future__ import annotations

import re

from corral.model.errors import InvalidInput

_COMPARISON = re.compile(r"^(>=|<=|==|!=|=|>|<|~|\^)?\s*v?([0-9A-Za-z][0-9A-Za-z.+_-]*)$")
_OPERATORS = (">=", "<=", "==", "!=", "=", ">", "<", "~", "^")

VersionKey = tuple[tuple[tuple[int, int | str], ...], int, tuple[tuple[int, int | str], ...]]


def version_key(version: str) -> VersionKey:
    """A sort key: release parts, then 1 for a release / 0 for a pre-release, then the pre-release parts."""
    text = version.strip().removeprefix("v").split("+", 1)[0]
    release, sep, pre = text.partition("-")
    main = tuple(_part(p) for p in release.split(".") if p != "")
    while main and main[-1] == (0, 0):
        main = main[:-1]  # 1.0 == 1.0.0
    pre_parts = tuple(_part(p) for p in re.split(r"[.-]", pre) if p != "") if sep else ()
    return main, (0 if sep else 1), pre_parts


def _part(text: str) -> tuple[int, int | str]:
    return (0, int(text)) if text.isdigit() else (1, text)  # numbers before words, as in semver


def compare(left: str, right: str) -> int:
    a, b = version_key(left), version_key(right)
    return (a > b) - (a < b)


def parse_range(text: str) -> list[list[tuple[str, str]]]:
    """`">1.0 <2.0 || >3.0"` -> [[(">", "1.0"), ("<", "2.0")], [(">", "3.0")]]; InvalidInput when malformed."""
    alternatives = []
    for alternative in text.split("||"):
        tokens = _tokens(alternative)
        if not tokens:
            raise InvalidInput(f"upgrade_from {text!r}: an empty alternative", field="upgrade_from")
        conditions = []
        for token in tokens:
            match = _COMPARISON.match(token)
            if match is None:
                raise InvalidInput(f"upgrade_from {text!r}: cannot read {token!r}", field="upgrade_from")
            conditions.append((match.group(1) or "=", match.group(2)))
        alternatives.append(conditions)
    return alternatives


def _tokens(alternative: str) -> list[str]:
    """Split on spaces, keeping an operator written apart from its version (`>= 1.0`) with that version."""
    tokens: list[str] = []
    for word in alternative.replace(",", " ").split():
        if tokens and tokens[-1] in _OPERATORS:
            tokens[-1] += word
        else:
            tokens.append(word)
    return tokens


def admits(upgrade_from: str, version: str) -> bool:
    """Whether a version whose `upgrade_from` is this range may be reached from `version` ("" admits any)."""
    if not upgrade_from.strip():
        return True
    return any(all(_holds(op, version, bound) for op, bound in conds) for conds in parse_range(upgrade_from))


def _holds(operator: str, version: str, bound: str) -> bool:
    order = compare(version, bound)
    if operator in ("=", "=="):
        return order == 0
    if operator == "!=":
        return order != 0
    if operator == ">":
        return order > 0
    if operator == ">=":
        return order >= 0
    if operator == "<":
        return order < 0
    if operator == "<=":
        return order <= 0
    release = version_key(bound)[0]
    keep = 1 if operator == "~" and len(release) >= 2 else 0  # ~1.2.3 means <1.3; ^1.2.3 and ~1 mean <2
    if not release:
        return order >= 0
    ceiling = (*release[:keep], (0, _number(release[keep]) + 1))
    return order >= 0 and version_key(version)[0] < ceiling


def _number(part: tuple[int, int | str]) -> int:
    return part[1] if isinstance(part[1], int) else 0
