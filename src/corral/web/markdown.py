"""A minimal, safe Markdown subset for template READMEs: headings, paragraphs, lists, code blocks, `code`, **bold**.

Why not a Markdown library: READMEs come from catalogs anyone may add, and full Markdown passes raw HTML through.
Here every character of the input is escaped first and only a fixed set of tags is ever produced by this code,
so a README can never inject markup, scripts or links; anything else simply shows as text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"\s*[-*+]\s+(.*)$")
_FENCE = re.compile(r"\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def inline(text: str) -> str:
    """Escaped text with `code` spans and **bold**; nothing inside a code span is interpreted."""
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_BOLD.sub(r"<strong>\1</strong>", str(escape(text[position : match.start()]))))
        parts.append(f"<code>{escape(match.group(1))}</code>")
        position = match.end()
    parts.append(_BOLD.sub(r"<strong>\1</strong>", str(escape(text[position:]))))
    return "".join(parts)


def render_markdown(text: str) -> Markup:
    """HTML for `text`; headings start at <h3> so that a README never outranks the page's own headings."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            blocks.append("<p>" + inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if code is not None:
            if _FENCE.match(line):
                blocks.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if _FENCE.match(line):
            flush()
            code = []
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + 2)
            blocks.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif bullet:
            if paragraph:
                flush()
            items.append(bullet.group(1))
        elif not line.strip():
            flush()
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    flush()
    if code is not None:  # an unclosed fence runs to the end
        blocks.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
    return Markup("\n".join(blocks))  # noqa: S704 - every piece of text was escaped above
