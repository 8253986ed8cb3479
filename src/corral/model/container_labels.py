"""The container labels the pure core reads (the config hash a container was created from, `start_once`).

Why in the vocabulary: the orchestrator decides from what agents report, labels included, and may import nothing but
`model/`; runtime/labels.py, which names every label Corral sets, takes these from here so each key is spelt once.
"""

from __future__ import annotations

from collections.abc import Iterable

CONFIG_HASH = "io.corral.config-hash"
START_ONCE_KEYS = frozenset({"io.rancher.container.start_once", "io.corral.container.start_once"})  # "true"


def says(pairs: Iterable[tuple[str, str]], keys: frozenset[str], value: str) -> bool:
    return any(key in keys and found.strip().lower() == value for key, found in pairs)


def is_start_once(launch_labels: Iterable[tuple[str, str]]) -> bool:
    """`start_once: true`: the container runs once; exiting is its normal end (Corral does not restart it)."""
    return says(launch_labels, START_ONCE_KEYS, "true")
