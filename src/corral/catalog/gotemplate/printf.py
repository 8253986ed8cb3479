"""Go's fmt for template values: `%v` printing, `strconv.Quote`, and `printf` verbs mapped onto Python carefully.

Why: catalog templates compare `printf "%.1s"` results and print numbers; Python's own formatting differs from Go's in
float shortest form, `%v` of lists and maps, quoting and the `%!verb(type=value)` error forms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


def go_type(value: Any) -> str:
    """Go's name for the type a Python value stands for, as `%T` and fmt errors print it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def format_float_shortest(value: float, fmt: str = "g") -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): shortest digits, exponent form when exp < -4 or exp >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len("".join(map(str, digit_tuple))) + exponent  # decimal point position relative to digits
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def format_value(value: Any) -> str:
    """fmt's `%v`: how `print` and template output show a value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float_shortest(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{format_value(k)}:{format_value(v)}" for k, v in items) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    return str(value)


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal with Go escapes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


MAX_WIDTH = 1_000_000  # Go's fmt refuses widths and precisions over 1e6 ("tooLarge")
_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?(.?)", re.S)


def _pad(text: str, width: int | None, flags: str, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    if "0" in flags:
        if numeric and text[:1] in "+- " and text[1:2] != "I":
            return text[0] + "0" * (width - len(text)) + text[1:]
        return "0" * (width - len(text)) + text
    return " " * (width - len(text)) + text


def _bad(verb: str, value: Any) -> str:
    return f"%!{verb}(<nil>)" if value is None else f"%!{verb}({go_type(value)}={format_value(value)})"


def _integer(verb: str, value: int, flags: str, prec: int | None) -> str:
    spec = {"d": "d", "x": "x", "X": "x", "o": "o", "O": "o", "b": "b"}[verb]
    digits = format(abs(value), spec)
    if verb == "X":
        digits = digits.upper()
    if prec is not None:
        digits = "" if prec == 0 and value == 0 else digits.rjust(prec, "0")
    if "#" in flags or verb == "O":
        digits = {"x": "0x", "X": "0X", "o": "0", "O": "0o", "b": "0b"}.get(verb, "") + digits
    sign = "-" if value < 0 else "+" if "+" in flags else " " if " " in flags else ""
    return sign + digits


def _one(verb: str, flags: str, prec: int | None, value: Any) -> tuple[str, bool]:
    """Text for one verb and whether it is numeric (for zero padding)."""
    if isinstance(value, (list, tuple)) and verb in "sdqxXobeEfFgGt":
        return "[" + " ".join(_one(verb, flags, prec, v)[0] for v in value) + "]", False
    if verb == "v":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _one("d" if isinstance(value, int) else "g", flags, prec, value)
        if "#" in flags and isinstance(value, str):
            return go_quote(value), False
        return format_value(value), False
    if verb == "T":
        return go_type(value), False
    if verb == "t":
        return (format_value(value), False) if isinstance(value, bool) else (_bad(verb, value), False)
    if verb in "sq" and isinstance(value, str):
        text = value if prec is None else value[:prec]
        return (go_quote(text) if verb == "q" else text), False
    if verb in "xX" and isinstance(value, str):
        text = value.encode().hex()
        return (text.upper() if verb == "X" else text), False
    if isinstance(value, bool) or value is None:
        return _bad(verb, value), False
    if isinstance(value, int):
        if verb in "dxXobO":
            return _integer(verb, value, flags, prec), True
        if verb == "c":
            return chr(value), False
        if verb == "q":
            return "'" + go_quote(chr(value))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'", False
        if verb == "U":
            return f"U+{value:04X}", False
        return _bad(verb, value), False
    if isinstance(value, float) and verb in "eEfFgG":
        if verb in "gG" and prec is None:
            text = format_float_shortest(value)
            text = text.upper() if verb == "G" else text
        else:
            text = format(value, f"{'+' if '+' in flags else ''}.{6 if prec is None else prec}{verb}")
            text = text.replace("inf", "Inf").replace("nan", "NaN").replace("INF", "Inf").replace("NAN", "NaN")
        if "+" in flags and not text.startswith(("+", "-")):
            text = "+" + text
        return text, True
    return _bad(verb, value), False


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf for the verbs templates use; wrong types and missing or extra arguments print as Go does."""
    out: list[str] = []
    used = 0
    pos = 0
    while True:
        at = fmt.find("%", pos)
        if at < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:at])
        match = _VERB.match(fmt, at)
        assert match is not None
        flags, width_text, prec_text, verb = match.groups()
        pos = match.end()
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            break
        width: int | None = None
        prec: int | None = None
        if (width_text and width_text != "*" and int(width_text) > MAX_WIDTH) or (
            prec_text and prec_text != "*" and int(prec_text) > MAX_WIDTH
        ):
            out.append("%!(NOVERB)")  # Go stops at a written width or precision over 1e6
            break
        if width_text == "*":
            width = args[used] if used < len(args) and isinstance(args[used], int) else None
            used += 1
            if width is not None and width < 0:
                flags, width = flags + "-", -width
            if width is not None and width > MAX_WIDTH:
                out.append("%!(BADWIDTH)")
                width = None
        elif width_text:
            width = int(width_text)
        if prec_text == "*":
            prec = args[used] if used < len(args) and isinstance(args[used], int) else None
            used += 1
            if prec is not None and prec > MAX_WIDTH:
                out.append("%!(BADPREC)")
                prec = None
            elif prec is not None and prec < 0:
                prec = None
        elif prec_text is not None:
            prec = int(prec_text or "0")
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        text, numeric = _one(verb, flags, prec, args[used])
        used += 1
        out.append(_pad(text, width, flags, numeric))
    if used < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={format_value(a)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    for index, arg in enumerate(args):
        if index > 0 and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out.append(" ")
        out.append(format_value(arg))
    return "".join(out)


def sprintln(args: Sequence[Any]) -> str:
    """fmt.Sprintln: always spaces between operands, and a newline."""
    return " ".join(format_value(a) for a in args) + "\n"
