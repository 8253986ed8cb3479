"""Why indexes of a service cannot be placed, grouped: "#3-#6: port 80/tcp is taken on all 4 active hosts".

Why a module in the vocabulary: the orchestrator writes a service's reason once per pass, the server's views and the
CLI's `ps` read it back per index; one format with its own parser keeps a scale of 10 on 2 hosts from printing the
same sentence eight times, and lets `ps` list every unplaced index with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# "#3", "#3-#6", "#3-#6, #9" followed by ": "; a group starts the text or follows "; "
_INDEXES = r"#\d+(?:-#\d+)?(?:, #\d+(?:-#\d+)?)*"
_GROUP_START = re.compile(rf"(?:^|; )(?={_INDEXES}: )")
_GROUP = re.compile(rf"({_INDEXES}): (.*)", re.DOTALL)


def _runs(indexes: list[int]) -> str:
    """[3, 4, 5, 6, 9] -> "#3-#6, #9"."""
    parts: list[str] = []
    start = previous = indexes[0]
    for index in [*indexes[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(f"#{start}" if start == previous else f"#{start}-#{previous}")
        if index is not None:
            start = previous = index
    return ", ".join(parts)


def group_unplaced(unplaced: Iterable[tuple[int, str]]) -> str:
    """One line per distinct reason, its indexes as ranges, in order of each reason's lowest index."""
    by_reason: dict[str, list[int]] = {}
    for index, why in sorted(unplaced):
        by_reason.setdefault(why, []).append(index)
    return "; ".join(f"{_runs(indexes)}: {why}" for why, indexes in by_reason.items())


def _expand(text: str) -> list[int]:
    indexes: list[int] = []
    for part in text.split(", "):
        first, _, last = part.partition("-")
        start = int(first[1:])
        indexes.extend(range(start, int(last[1:]) + 1) if last else [start])
    return indexes


def parse_unplaced(text: str) -> list[tuple[list[int], str]]:
    """The groups of a `group_unplaced` text: ([indexes], reason); text in another shape is no group."""
    if not text:
        return []
    starts = [m.end() for m in _GROUP_START.finditer(text)]
    if not starts or starts[0] != 0:
        return []
    groups: list[tuple[list[int], str]] = []
    for start, end in zip(starts, [*starts[1:], None], strict=True):
        chunk = text[start:end] if end is None else text[start : end - 2]  # drop the "; " before the next group
        match = _GROUP.fullmatch(chunk)
        if match is None:
            return []
        groups.append((_expand(match.group(1)), match.group(2)))
    return groups
