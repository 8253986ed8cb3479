"""The README renderer: the Markdown subset it understands, and that no input can produce any other markup."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from corral.web.markdown import render_markdown

ALLOWED_TAGS = {"h3", "h4", "h5", "h6", "p", "ul", "li", "pre", "code", "strong"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def test_the_subset() -> None:
    html = render_markdown(
        "# Title\n\nSome `code` and **bold** text\ncontinues.\n\n- one\n- two `x`\n\n```\n<b>raw</b>\n```\n"
    )
    assert html == (
        "<h3>Title</h3>\n"
        "<p>Some <code>code</code> and <strong>bold</strong> text continues.</p>\n"
        "<ul><li>one</li><li>two <code>x</code></li></ul>\n"
        "<pre><code>&lt;b&gt;raw&lt;/b&gt;</code></pre>"
    )


def test_raw_html_and_links_stay_text() -> None:
    html = render_markdown('<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="y">')
    tags = parsed(html)
    assert [tag for tag, _ in tags.tags] == ["p"]
    assert "<script>alert(1)</script>" in "".join(tags.text)


def test_code_spans_are_not_interpreted() -> None:
    assert render_markdown("`**not bold**`") == "<p><code>**not bold**</code></p>"


PIECES = st.sampled_from([*"<>&\"'`*#-_ \n=/abc", "script", "img", "```", "**", "# ", "- "])


@given(st.lists(PIECES, max_size=80).map("".join))
def test_no_input_yields_other_tags_or_any_attribute(text: str) -> None:
    tags = parsed(render_markdown(text))
    assert all(tag in ALLOWED_TAGS and not attrs for tag, attrs in tags.tags)


@given(st.text(max_size=200))
def test_every_character_of_plain_text_survives(text: str) -> None:
    """Text without Markdown syntax comes back unchanged once the HTML is read (nothing dropped, nothing added)."""
    plain = "".join(c for c in text if c.isalnum() or c in " <>&\"'.,;:!?")
    words = " ".join(plain.split())
    shown = "".join(parsed(render_markdown(words)).text)
    assert shown == words
