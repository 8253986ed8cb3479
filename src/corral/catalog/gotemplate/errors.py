"""Template errors that point at FILE:LINE:COL, so a catalog author can find the exact spot.

Why: a broken `.tpl` in a catalog must be reported as bad input naming the file and position, never as a crash.
"""

from __future__ import annotations

import bisect

from corral.model.errors import InvalidInput


class TemplateError(InvalidInput):
    """A `.tpl` file could not be lexed, parsed or executed; the message starts `FILE:LINE:COL: ` (1-based)."""


class Source:
    """A template text and its file name, turning character offsets into line and column."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        line_index = bisect.bisect_left(self._newlines, offset)
        line_start = self._newlines[line_index - 1] + 1 if line_index > 0 else 0
        return line_index + 1, offset - line_start + 1

    def error(self, offset: int, message: str) -> TemplateError:
        line, col = self.position(offset)
        return TemplateError(f"{self.filename}:{line}:{col}: {message}", field=self.filename)
