"""Lexer for Go text/template: text, `{{ }}` actions with `{{-`/`-}}` trim markers, comments and action tokens.

Why: Rancher catalog `.tpl` files are Go templates; a faithful tokeniser (Go's whitespace trimming, string escapes,
number syntax) is what makes the rendered YAML byte-for-byte what Rancher produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from corral.catalog.gotemplate.errors import Source

SPACE_CHARS = " \t\r\n"
KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"})


class Kind(Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    SPACE = "space"
    FIELD = "field"
    VARIABLE = "variable"
    IDENT = "identifier"
    KEYWORD = "keyword"
    STRING = "string"
    NUMBER = "number"
    CHAR = "character constant"
    BOOL = "bool"
    NIL = "nil"
    DOT = "."
    LPAREN = "("
    RPAREN = ")"
    PIPE = "|"
    DECLARE = ":="
    ASSIGN = "="
    COMMA = ","
    EOF = "EOF"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    pos: int
    value: str = ""  # decoded string literal


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|0[oObB][0-9_]*|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?)i?"
)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


class _Lexer:
    def __init__(self, source: Source) -> None:
        self.src = source
        self.text = source.text
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        text, n, i = self.text, len(self.text), 0
        trim_next = False
        while i < n:
            j = text.find("{{", i)
            if j < 0:
                j = n
            chunk_start, chunk = i, text[i:j]
            left_trim = j < n and text.startswith("-", j + 2) and j + 3 < n and text[j + 3] in SPACE_CHARS
            if trim_next:
                stripped = chunk.lstrip(SPACE_CHARS)
                chunk_start += len(chunk) - len(stripped)
                chunk = stripped
                trim_next = False
            if left_trim:
                chunk = chunk.rstrip(SPACE_CHARS)
            if chunk:
                self.tokens.append(Token(Kind.TEXT, chunk, chunk_start))
            if j >= n:
                break
            k = j + 4 if left_trim else j + 2
            if text.startswith("/*", k):
                i, trim_next = self._comment(j, k)
                continue
            self.tokens.append(Token(Kind.LEFT, "{{", j))
            i, trim_next = self._action(j, k)
        self.tokens.append(Token(Kind.EOF, "", n))
        return self.tokens

    def _comment(self, start: int, k: int) -> tuple[int, bool]:
        end = self.text.find("*/", k + 2)
        if end < 0:
            raise self.src.error(start, "unclosed comment")
        after = end + 2
        if after + 1 < len(self.text) and self.text[after] in SPACE_CHARS and self.text.startswith("-}}", after + 1):
            return after + 4, True
        if self.text.startswith("}}", after):
            return after + 2, False
        raise self.src.error(start, "comment ends before closing delimiter")

    def _action(self, start: int, i: int) -> tuple[int, bool]:
        text, n, depth = self.text, len(self.text), 0
        emit = self.tokens.append
        while True:
            if i >= n:
                raise self.src.error(start, "unclosed action")
            ch = text[i]
            if (ch in SPACE_CHARS and text.startswith("-}}", i + 1)) or text.startswith("}}", i):
                if depth > 0:
                    raise self.src.error(i, "unclosed left paren")
                trim = ch in SPACE_CHARS
                pos = i + 2 if trim else i
                emit(Token(Kind.RIGHT, "}}", pos))
                return pos + 2, trim
            if ch in SPACE_CHARS:
                j = i
                while j < n and text[j] in SPACE_CHARS and not text.startswith("-}}", j + 1):
                    j += 1
                emit(Token(Kind.SPACE, text[i:j], i))
                i = j if j > i else i + 1
            elif ch == ":":
                if not text.startswith(":=", i):
                    raise self.src.error(i, "expected :=")
                emit(Token(Kind.DECLARE, ":=", i))
                i += 2
            elif ch in "=|,":
                emit(Token({"=": Kind.ASSIGN, "|": Kind.PIPE, ",": Kind.COMMA}[ch], ch, i))
                i += 1
            elif ch == "(":
                depth += 1
                emit(Token(Kind.LPAREN, ch, i))
                i += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    raise self.src.error(i, "unexpected right paren")
                emit(Token(Kind.RPAREN, ch, i))
                i += 1
            elif ch == '"':
                i = self._quoted(i)
            elif ch == "`":
                end = text.find("`", i + 1)
                if end < 0:
                    raise self.src.error(i, "unterminated raw quoted string")
                emit(Token(Kind.STRING, text[i : end + 1], i, text[i + 1 : end]))
                i = end + 1
            elif ch == "'":
                i = self._char(i)
            elif ch == "$":
                j = i + 1
                while j < n and _is_alnum(text[j]):
                    j += 1
                emit(Token(Kind.VARIABLE, text[i:j], i))
                i = self._terminated(j)
            elif ch == "." and not (i + 1 < n and text[i + 1].isdigit()):
                j = i + 1
                while j < n and _is_alnum(text[j]):
                    j += 1
                emit(Token(Kind.FIELD if j > i + 1 else Kind.DOT, text[i:j], i))
                i = self._terminated(j)
            elif ch in "+-." or ch.isdigit():
                i = self._number(i)
            elif _is_alnum(ch):
                j = i
                while j < n and _is_alnum(text[j]):
                    j += 1
                word = text[i:j]
                if word in KEYWORDS:
                    kind = Kind.KEYWORD
                elif word in ("true", "false"):
                    kind = Kind.BOOL
                elif word == "nil":
                    kind = Kind.NIL
                else:
                    kind = Kind.IDENT
                emit(Token(kind, word, i))
                i = self._terminated(j)
            else:
                raise self.src.error(i, f"unrecognized character in action: {ch!r}")

    def _terminated(self, j: int) -> int:
        text = self.text
        if j >= len(text) or text[j] in SPACE_CHARS or text[j] in ".,|:()" or text.startswith("}}", j):
            return j
        raise self.src.error(j, f"bad character {text[j]!r}")

    def _number(self, i: int) -> int:
        match = _NUMBER.match(self.text, i)
        j = match.end() if match else i
        if (j < len(self.text) and _is_alnum(self.text[j])) or j == i:
            end = j + 1
            raise self.src.error(i, f"bad number syntax: {self.text[i:end]!r}")
        self.tokens.append(Token(Kind.NUMBER, self.text[i:j], i))
        return j

    def _quoted(self, i: int) -> int:
        text, n, j = self.text, len(self.text), i + 1
        while True:
            if j >= n or text[j] == "\n":
                raise self.src.error(i, "unterminated quoted string")
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == '"':
                break
            j += 1
        raw = text[i : j + 1]
        self.tokens.append(Token(Kind.STRING, raw, i, self._unescape(raw[1:-1], i, '"')))
        return j + 1

    def _char(self, i: int) -> int:
        text, n, j = self.text, len(self.text), i + 1
        while True:
            if j >= n or text[j] == "\n":
                raise self.src.error(i, "unterminated character constant")
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == "'":
                break
            j += 1
        raw = text[i : j + 1]
        value = self._unescape(raw[1:-1], i, "'")
        if len(value) != 1:
            raise self.src.error(i, f"malformed character constant: {raw}")
        self.tokens.append(Token(Kind.CHAR, raw, i, value))
        return j + 1

    def _unescape(self, body: str, pos: int, quote: str) -> str:
        out: list[str] = []
        k = 0
        while k < len(body):
            ch = body[k]
            if ch != "\\":
                out.append(ch)
                k += 1
                continue
            esc = body[k + 1] if k + 1 < len(body) else ""
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                k += 2
            elif esc == quote:
                out.append(quote)
                k += 2
            elif esc in "xuU" and esc:
                size = {"x": 2, "u": 4, "U": 8}[esc]
                digits = body[k + 2 : k + 2 + size]
                if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise self.src.error(pos, f"invalid escape \\{esc} in {quote}{body}{quote}")
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise self.src.error(pos, f"invalid escape \\{esc}{digits}: not a valid code point")
                out.append(chr(code))
                k += 2 + size
            elif esc and esc in "01234567":
                digits = body[k + 1 : k + 4]
                if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                    raise self.src.error(pos, f"invalid octal escape in {quote}{body}{quote}")
                out.append(chr(int(digits, 8)))
                k += 4
            else:
                raise self.src.error(pos, f"invalid escape \\{esc} in {quote}{body}{quote}")
        return "".join(out)


def lex(source: Source) -> list[Token]:
    """Tokens of the whole template, ending with EOF; raises TemplateError at the first lexical error."""
    return _Lexer(source).run()
