"""Typed readers for compose values: strings, booleans, ints, durations, sizes, lists and KEY=VALUE collections.

Why lenient about strings: interpolation happens before validation, so `scale: ${SCALE}` arrives as the string "3"
and must count as the int it spells, exactly as compose converts types after interpolation. Everything else that
does not fit raises an `InvalidInput` naming the file, service and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from corral.compose.location import Loc

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)i?b?", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def kind(value: Any) -> str:
    """How a value is described in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def scalar_text(value: Any, loc: Loc) -> str:
    """A YAML scalar as the text a container sees: numbers as written, booleans lowercased, null as ""."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        source = getattr(value, "yaml_source", None)
        return source if isinstance(source, str) else str(value)
    raise loc.error(f"must be a string, number or boolean, not {kind(value)}")


def as_str(value: Any, loc: Loc, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float):  # booleans too: `[--flag, true]` means "true", as in compose
        return scalar_text(value, loc)
    raise loc.error(f"must be a string, not {kind(value)}")


def as_bool(value: Any, loc: Loc) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise loc.error(f"must be true or false, not {_show(value)}")


def as_int(value: Any, loc: Loc, *, low: int | None = None, high: int | None = None) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None:
        raise loc.error(f"must be an integer, not {_show(value)}")
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else f"at least {low}"
        raise loc.error(f"must be {bounds}, not {number}")
    return number


def as_float(value: Any, loc: Loc, *, positive: bool = True) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        number = float(value.strip())
    if number is None or not math.isfinite(number):
        raise loc.error(f"must be a number, not {_show(value)}")
    if positive and number <= 0:
        raise loc.error(f"must be greater than 0, not {number:g}")
    return number


def duration_seconds(value: Any, loc: Loc) -> float:
    """Compose durations ("10s", "1m30s", "500ms"); a bare number counts as seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        seconds = float(value.strip())
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        seconds = 0.0
        position = 0
        for match in _DURATION_PART.finditer(text):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            position = match.end()
        if position != len(text):
            raise loc.error(f"{value!r} is not a duration (use e.g. 10s, 1m30s, 500ms)")
    else:
        raise loc.error(f"must be a duration like 10s or 1m30s, not {_show(value)}")
    if seconds < 0 or not math.isfinite(seconds):
        raise loc.error(f"must not be negative, not {_show(value)}")
    return round(seconds, 9)


def memory_bytes(value: Any, loc: Loc) -> int | None:
    """Docker memory sizes ("512m", "1g", "1.5GiB", or bytes); 0 means no limit (None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = int(value)
    elif isinstance(value, str) and (match := _MEMORY.fullmatch(value.strip())):
        size = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
    else:
        raise loc.error(f"{_show(value)} is not a memory size (use e.g. 512m, 1g, or a number of bytes)")
    if size < 0:
        raise loc.error(f"must not be negative, not {_show(value)}")
    return size or None


def mapping(value: Any, loc: Loc, *, null_ok: bool = True) -> dict[str, Any]:
    """A mapping with string keys (null counts as empty when `null_ok`)."""
    if value is None and null_ok:
        return {}
    if not isinstance(value, dict):
        raise loc.error(f"must be a mapping, not {kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise loc.error(f"key {key!r} must be a string")
    return value


def sequence(value: Any, loc: Loc) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise loc.error(f"must be a list, not {kind(value)}")
    return value


def str_list(value: Any, loc: Loc, *, single: bool = False) -> tuple[str, ...]:
    """A list of strings (numbers allowed); a lone string counts as a one-item list when `single`."""
    if single and isinstance(value, str):
        return (value,)
    return tuple(as_str(item, loc.key(i), numbers=True) for i, item in enumerate(sequence(value, loc)))


def key_values(value: Any, loc: Loc, *, missing: Callable[[str], str | None]) -> dict[str, str]:
    """`environment`/`labels` style collections: a list of `K=V` / `K` items, or a mapping of scalars.

    A key without a value (`K` in a list, `K:` with null in a mapping) gets `missing(K)`, or is left out when that
    is None.
    """
    result: dict[str, str] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            text = as_str(item, loc.key(i), numbers=True)
            key, sep, val = text.partition("=")
            if not key or key != key.strip():
                raise loc.key(i).error(f"{text!r} must look like KEY=VALUE")
            if key in result:
                raise loc.key(i).error(f"{key!r} is set twice")
            found = val if sep else missing(key)
            if found is not None:
                result[key] = found
        return result
    if isinstance(value, dict):
        for key, val in value.items():
            name = scalar_text(key, loc) if not isinstance(key, dict | list) else ""
            if not name:
                raise loc.error(f"key {key!r} must be a non-empty string")
            if name in result:
                raise loc.key(name).error(f"{name!r} is set twice")
            found = missing(name) if val is None else scalar_text(val, loc.key(name))
            if found is not None:
                result[name] = found
        return result
    if value is None:
        return result
    raise loc.error(f"must be a list of KEY=VALUE strings or a mapping, not {kind(value)}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict | list):
        return kind(value)
    return scalar_text(value, Loc("")) if value is not None else "null"
