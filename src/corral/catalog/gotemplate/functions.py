"""Go's template builtins and the sprig functions real Rancher catalogs use, with their Go argument types.

Why: a catalog `.tpl` calls `eq`, `printf`, `atoi`, `until`, `default`… and relies on Go/sprig behaviour (sprig's
`atoi` yields 0 on bad input, `split` gives a map `_0, _1, …`, `eq` refuses to compare a string with an int).
Each function declares parameter kinds; the evaluator checks arguments against them like Go's reflection does.
`keys` returns its keys sorted (sprig's order is random; sorted keeps rendering deterministic).

Hostile templates: the regex functions use RE2 (the `google-re2` package; Go's own regexp is RE2 too), whose
matching time is linear in the text, so no pattern backtracks catastrophically; `repeat`, `until`, `untilStep`
and `splitList` refuse to build anything over the budget (`budget.py`) before allocating it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

from corral.catalog.gotemplate.budget import DEFAULT_LIMITS
from corral.catalog.gotemplate.parser import parse_number
from corral.catalog.gotemplate.printf import format_value, go_quote, sprint, sprintf, sprintln


class FuncError(Exception):
    """A function failed; the evaluator reports it as `error calling NAME: message`."""


@dataclass(frozen=True)
class Func:
    fn: Callable[..., Any]
    params: tuple[str, ...]  # kinds: any, str, int, float, bool, list, map
    variadic: str | None = None


FUNCS: dict[str, Func] = {}
LAZY = frozenset({"and", "or"})  # evaluated by the evaluator itself: they short-circuit


def _register(
    name: str, *params: str, variadic: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        FUNCS[name] = Func(fn, params, variadic)
        return fn

    return wrap


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, Mapping, bytes)):
        return bool(value)
    return True


def strval(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value)


def to_int(value: Any) -> int:
    """cast.ToInt64 as sprig uses it: numbers truncate, strings parse (base prefixes allowed), failures give 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return 0 if math.isnan(value) or math.isinf(value) else int(value)
    if isinstance(value, str):
        text = value.split(".")[0] if re.fullmatch(r"[+-]?[0-9]+\.0*", value) else value
        parsed = parse_number(text) if re.fullmatch(r"[+-]?(?:0[xXoObB][0-9a-fA-F_]+|[0-9_]+)", text) else None
        return int(parsed[0]) if parsed is not None else 0
    return 0


def to_float(value: Any) -> float:
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value) if "_" not in value else 0.0
        except ValueError:
            return 0.0
    return 0.0


# -- Go builtins ------------------------------------------------------------------------------------------------


@_register("not", "any")
def _not(value: Any) -> bool:
    return not truth(value)


@_register("len", "any")
def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, tuple, Mapping, bytes)):
        return len(value)
    raise FuncError(f"len of type {type(value).__name__}")


@_register("index", "any", variadic="any")
def _index(item: Any, *indexes: Any) -> Any:
    for key in indexes:
        if isinstance(item, Mapping):
            item = item.get(key, "")
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FuncError(f"cannot index slice/array with type {type(key).__name__}")
            if not 0 <= key < len(item):
                raise FuncError(f"index out of range: {key}")
            item = item[key].encode()[0] if isinstance(item, str) else item[key]
        elif item is None:
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {type(item).__name__}")
    return item


@_register("slice", "any", variadic="int")
def _slice(item: Any, *indexes: int) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise FuncError(f"can't slice item of type {type(item).__name__}")
    if len(indexes) > 2:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    start = indexes[0] if indexes else 0
    end = indexes[1] if len(indexes) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise FuncError(f"index out of range: {start}:{end}")
    return item[start:end]


@_register("print", variadic="any")
def _print(*args: Any) -> str:
    return sprint(args)


@_register("printf", "str", variadic="any")
def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, args)


@_register("println", variadic="any")
def _println(*args: Any) -> str:
    return sprintln(args)


def _escape_args(args: tuple[Any, ...]) -> str:
    return args[0] if len(args) == 1 and isinstance(args[0], str) else sprint(args)


@_register("html", variadic="any")
def _html(*args: Any) -> str:
    text = _escape_args(args).replace("\0", "\ufffd")
    return html.escape(text, quote=False).replace("'", "&#39;").replace('"', "&#34;")


@_register("js", variadic="any")
def _js(*args: Any) -> str:
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}
    out = []
    for ch in _escape_args(args):
        if ch in table:
            out.append(table[ch])
        elif ord(ch) < 0x80 and not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


@_register("urlquery", variadic="any")
def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_escape_args(args), safe="-_.~")


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


@_register("eq", "any", variadic="any")
def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        if first is None or other is None:
            if first is other:
                return True
            continue
        if _kind(first) != _kind(other) or _kind(first) == "other":
            if _kind(first) == "other" and _kind(other) == "other" and type(first) is type(other):
                raise FuncError("non-comparable type")
            raise FuncError("incompatible types for comparison")
        if first == other:
            return True
    return False


@_register("ne", "any", "any")
def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _ordered(first: Any, second: Any) -> tuple[Any, Any]:
    for value in (first, second):
        if _kind(value) not in ("int", "float", "string"):
            raise FuncError("invalid type for comparison")
    if _kind(first) != _kind(second):
        raise FuncError("incompatible types for comparison")
    return first, second


FUNCS["lt"] = Func(lambda a, b: (lambda x, y: x < y)(*_ordered(a, b)), ("any", "any"))
FUNCS["le"] = Func(lambda a, b: (lambda x, y: x <= y)(*_ordered(a, b)), ("any", "any"))
FUNCS["gt"] = Func(lambda a, b: (lambda x, y: x > y)(*_ordered(a, b)), ("any", "any"))
FUNCS["ge"] = Func(lambda a, b: (lambda x, y: x >= y)(*_ordered(a, b)), ("any", "any"))
FUNCS["and"] = Func(lambda *a: a[-1], ("any",), "any")
FUNCS["or"] = Func(lambda *a: a[-1], ("any",), "any")


# -- sprig ------------------------------------------------------------------------------------------------------


def empty(value: Any) -> bool:
    return not truth(value)


FUNCS["empty"] = Func(empty, ("any",))
FUNCS["default"] = Func(lambda d, *given: d if not given or empty(given[0]) else given[0], ("any",), "any")
FUNCS["coalesce"] = Func(lambda *v: next((x for x in v if not empty(x)), None), (), "any")
FUNCS["ternary"] = Func(lambda yes, no, cond: yes if cond else no, ("any", "any", "bool"))
FUNCS["quote"] = Func(lambda *v: " ".join(go_quote(strval(x)) for x in v if x is not None), (), "any")
FUNCS["squote"] = Func(lambda *v: " ".join(f"'{strval(x)}'" for x in v if x is not None), (), "any")
FUNCS["upper"] = Func(str.upper, ("str",))
FUNCS["lower"] = Func(str.lower, ("str",))
FUNCS["trim"] = Func(lambda s: s.strip(" \t\n\r\v\f\u0085\u00a0"), ("str",))
FUNCS["trimAll"] = Func(lambda cutset, s: s.strip(cutset), ("str", "str"))
FUNCS["trimPrefix"] = Func(lambda prefix, s: s.removeprefix(prefix), ("str", "str"))
FUNCS["trimSuffix"] = Func(lambda suffix, s: s.removesuffix(suffix), ("str", "str"))
FUNCS["contains"] = Func(lambda sub, s: sub in s, ("str", "str"))
FUNCS["hasPrefix"] = Func(lambda prefix, s: s.startswith(prefix), ("str", "str"))
FUNCS["hasSuffix"] = Func(lambda suffix, s: s.endswith(suffix), ("str", "str"))
FUNCS["replace"] = Func(lambda old, new, s: s.replace(old, new), ("str", "str", "str"))
MAX_VALUE = DEFAULT_LIMITS.value_bytes
MAX_ITEMS = DEFAULT_LIMITS.items


def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise FuncError("negative Repeat count")
    if count * len(text) > MAX_VALUE:
        raise FuncError(f"template budget exceeded: repeat would make {count * len(text)} bytes (limit {MAX_VALUE})")
    return text * count


def _items(count: int, name: str) -> None:
    if count > MAX_ITEMS:
        raise FuncError(f"template budget exceeded: {name} would make {count} items (limit {MAX_ITEMS})")


FUNCS["repeat"] = Func(_repeat, ("int", "str"))
FUNCS["nospace"] = Func(lambda s: "".join(ch for ch in s if not ch.isspace()), ("str",))
FUNCS["b64enc"] = Func(lambda s: base64.b64encode(s.encode()).decode(), ("str",))
FUNCS["sha256sum"] = Func(lambda s: hashlib.sha256(s.encode()).hexdigest(), ("str",))
FUNCS["toString"] = Func(strval, ("any",))
FUNCS["atoi"] = Func(lambda s: int(s) if re.fullmatch(r"[+-]?[0-9]+", s) else 0, ("str",))
FUNCS["int"] = Func(to_int, ("any",))
FUNCS["int64"] = Func(to_int, ("any",))
FUNCS["float64"] = Func(to_float, ("any",))
FUNCS["list"] = Func(lambda *v: list(v), (), "any")
FUNCS["hasKey"] = Func(lambda d, key: key in d, ("map", "str"))
FUNCS["keys"] = Func(lambda *maps: sorted(str(k) for m in maps for k in m), (), "map")
FUNCS["add"] = Func(lambda *v: sum(to_int(x) for x in v), (), "any")
FUNCS["add1"] = Func(lambda v: to_int(v) + 1, ("any",))
FUNCS["sub"] = Func(lambda a, b: to_int(a) - to_int(b), ("any", "any"))
FUNCS["mul"] = Func(lambda a, *v: math.prod([to_int(a), *(to_int(x) for x in v)]), ("any",), "any")
FUNCS["max"] = Func(lambda a, *v: max([to_int(a), *(to_int(x) for x in v)]), ("any",), "any")
FUNCS["min"] = Func(lambda a, *v: min([to_int(a), *(to_int(x) for x in v)]), ("any",), "any")


def _fail(message: str) -> Any:
    raise FuncError(message)


def _go_div(a: int, b: int) -> int:
    """Go's integer division truncates toward zero."""
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


FUNCS["div"] = Func(lambda a, b: _go_div(to_int(a), to_int(b)), ("any", "any"))
FUNCS["mod"] = Func(lambda a, b: to_int(a) - _go_div(to_int(a), to_int(b)) * to_int(b), ("any", "any"))


@_register("title", "str")
def _title(text: str) -> str:
    out, previous = [], " "
    for ch in text:
        separator = not (previous.isalnum() or previous == "_") if previous.isascii() else previous.isspace()
        out.append(ch.upper() if separator else ch)
        previous = ch
    return "".join(out)


@_register("split", "str", "str")
def _split(sep: str, text: str) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(_go_split(sep, text))}


@_register("splitList", "str", "str")
def _split_list(sep: str, text: str) -> list[str]:
    return _go_split(sep, text)


def _go_split(sep: str, text: str) -> list[str]:
    _items(len(text) if sep == "" else text.count(sep) + 1, "split")
    return list(text) if sep == "" else text.split(sep)


@_register("join", "str", "any")
def _join(sep: str, items: Any) -> str:
    if isinstance(items, (list, tuple)):
        return sep.join(strval(x) for x in items if x is not None)
    return strval(items)


@_register("dict", variadic="any")
def _dict(*pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        result[strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return result


@_register("until", "int")
def _until(count: int) -> list[int]:
    _items(abs(count), "until")
    return list(range(count)) if count >= 0 else list(range(0, count, -1))


@_register("untilStep", "int", "int", "int")
def _until_step(start: int, stop: int, step: int) -> list[int]:
    if step == 0 or (start < stop and step < 0) or (start > stop and step > 0):
        return []
    steps = range(start, stop, step)
    _items(len(steps), "untilStep")
    return list(steps)


@_register("substr", "int", "int", "str")
def _substr(start: int, end: int, text: str) -> str:
    data = text.encode()
    if start < 0:
        return data[:end].decode(errors="replace")
    if end < 0 or end > len(data):
        return data[start:].decode(errors="replace")
    return data[start:end].decode(errors="replace")


@_register("b64dec", "str")
def _b64dec(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode(errors="replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base64 data: {exc}"


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 * 1024 * 1024  # per compiled pattern: a huge one fails to compile instead
MAX_PATTERN = 4096


def _compile(pattern: str) -> Any:
    """An RE2 pattern (linear-time matching, Go's syntax); FuncError with Go's wording when it does not compile."""
    if len(pattern) > MAX_PATTERN:
        raise FuncError(f"regexp: Compile: pattern longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FuncError(f"regexp: Compile({go_quote(pattern)}): {reason}") from None


@_register("regexMatch", "str", "str")
def _regex_match(pattern: str, text: str) -> bool:
    try:
        return _compile(pattern).search(text) is not None
    except FuncError:
        return False


_DOLLAR = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")


@_register("regexReplaceAll", "str", "str", "str")
def _regex_replace_all(pattern: str, text: str, replacement: str) -> str:
    compiled = _compile(pattern)

    def expand(match: Any) -> str:
        def group(ref: re.Match[str]) -> str:
            if ref.group(1):
                return "$"
            name = ref.group(2) or ref.group(3)
            try:
                value = match.group(int(name) if name.isdigit() else name)
            except (IndexError, KeyError, re2.error):
                return ""
            return str(value or "")

        return _DOLLAR.sub(group, replacement)

    return str(compiled.sub(expand, text))
