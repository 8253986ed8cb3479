"""Validation of user-chosen names and labels.

Why: names end up in shell-adjacent places (network namespaces, interface names, container names, file paths);
rejecting anything outside a conservative alphabet at the API edge keeps metacharacters out of every layer below.
"""

from __future__ import annotations

import re

from corral.model.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/:-]{0,251}[A-Za-z0-9])?$")
LABEL_VALUE_MAX = 1024


def validate_name(value: object, *, field: str = "name") -> str:
    """Return `value` if it is a DNS-label-like name (lowercase letters, digits, inner dashes, 1-63 chars)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid name: use 1-63 lowercase letters, digits and inner dashes",
            field=field,
        )
    return value


def validate_labels(labels: object, *, field: str = "labels") -> dict[str, str]:
    """Return a copy of `labels` after checking every key and value."""
    if not isinstance(labels, dict):
        raise InvalidInput(f"{field} must be an object of string keys and values", field=field)
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_PATTERN.fullmatch(key):
            raise InvalidInput(f"{field} key {key!r} is not a valid label key", field=f"{field}.{key}")
        if not isinstance(value, str):
            raise InvalidInput(f"{field} value of {key!r} must be a string", field=f"{field}.{key}")
        if len(value) > LABEL_VALUE_MAX or any(ord(ch) < 32 for ch in value):
            raise InvalidInput(
                f"{field} value of {key!r} is too long or holds control characters", field=f"{field}.{key}"
            )
        checked[key] = value
    return checked


def parse_label_pairs(pairs: list[str], *, field: str = "label") -> dict[str, str]:
    """Turn `["k=v", ...]` (CLI flags) into a label dict, naming the bad pair on error."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{field} {pair!r} must look like KEY=VALUE", field=field)
        labels[key] = value
    return validate_labels(labels, field=field)
