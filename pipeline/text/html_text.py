"""HTML → text, once: live tickets (webhooks, SDP fetches), imported history and KB pages go
through ``html_to_text``, so the words a new ticket is matched on and the words of the tickets it
is matched against are produced the same way; the note reduces every untrusted piece it shows to
one line with ``plain_text`` (the same parser), and counts its words on it.

A regex that deletes `<...>` keeps what must not be indexed — the source of `<script>` and
`<style>` blocks, hidden templates — and glues words from adjacent blocks together. A real
(forgiving) parser drops those elements whole, turns block boundaries into line breaks and
decodes entities once, so full-text search and note excerpts see the words a reader sees.
Inline tags separate words too (``<b>10.0.0.1</b><i>10.0.0.2</i>`` stays two addresses): a
word split by a tag is far rarer in tickets than two values glued by one. Plain text (most
tickets) passes through with its line breaks intact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

# Elements whose content is never reader-visible text.
_INVISIBLE = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "head", "object", "iframe", "select"}
)
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
# A "<" that no ">" closes before the next "<" cannot start a tag. Escaping it first keeps
# parsing linear: HTMLParser rescans the rest of the input for every such "<" (quadratic;
# 100 kB of "<a " took half a minute), and ticket text comes from anyone.
_UNCLOSED_LT = re.compile(r"<(?![^<>]*>)")
_BLANK_LINES = re.compile(r"\n{3,}")
# An inline tag separates words, but not a word from the punctuation after it or the bracket
# before it: "on <b>gw-01</b>." reads "on gw-01.", and two addresses in <b> and <i> stay apart.
_INLINE = "\ue000"
_INLINE_GAPS = re.compile(r"\ue000+(?=[\s.,;:!?)\]}]|$)|(?<=[\s(\[{])\ue000+|^\ue000+")
# A tag the input never closes: the HTML parsing rules drop it, and so does ``plain_text``.
_DANGLING_TAG = re.compile(r"<[A-Za-z/!?][^<>]*$")


@dataclass(frozen=True)
class HtmlDocument:
    text: str
    title: str | None
    heading: str | None


class _Extractor(HTMLParser):
    def __init__(self, *, bullets: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.bullets = bullets
        self.parts: list[str] = []
        self.hidden: list[str] = []  # open invisible elements (a stack: they can nest)
        self.title: list[str] | None = None
        self.heading: list[str] | None = None
        self.title_text: str | None = None
        self.heading_text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.hidden:
            self.hidden.clear()  # an unclosed <head> must not hide the whole page
        if tag == "title" and self.title_text is None:
            self.title = []
        elif tag in _INVISIBLE and tag not in _VOID:
            self.hidden.append(tag)
        elif tag == "h1" and self.heading_text is None and not self.hidden:
            self.heading = []
        self.parts.append("\n" if tag in _BLOCK else _INLINE)
        if tag == "li" and self.bullets:
            self.parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append("\n" if tag in _BLOCK else _INLINE)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title is not None:
            self.title_text = _one_line("".join(self.title)) or None
            self.title = None
        elif tag in self.hidden:
            # Close through the matching open element, tolerating unclosed children.
            while self.hidden and self.hidden.pop() != tag:
                pass
        elif tag == "h1" and self.heading is not None:
            self.heading_text = _one_line("".join(self.heading)) or None
            self.heading = None
        if tag in _BLOCK and tag != "li":  # the next item's own break separates list items
            self.parts.append("\n")
        elif tag not in _BLOCK:
            self.parts.append(_INLINE)

    def handle_data(self, data: str) -> None:
        if self.title is not None:
            self.title.append(data)
            return
        if self.hidden:
            return
        data = data.replace(_INLINE, "")
        if self.heading is not None:
            self.heading.append(data)
        self.parts.append(data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tidy(text: str) -> str:
    text = _INLINE_GAPS.sub("", text).replace(_INLINE, " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_html(markup: str, *, bullets: bool = True) -> HtmlDocument:
    """Visible text plus the `<title>` and first `<h1>`, for titling imported pages; list items
    start with "- " unless ``bullets`` is false."""
    parser = _Extractor(bullets=bullets)
    parser.feed(_UNCLOSED_LT.sub("&lt;", markup or ""))
    parser.close()
    if parser.heading is not None:  # an unclosed <h1> still names the page
        parser.heading_text = _one_line("".join(parser.heading)) or None
    return HtmlDocument(
        text=_tidy("".join(parser.parts)), title=parser.title_text, heading=parser.heading_text
    )


def html_to_text(markup: str | None) -> str:
    """Reader-visible text of ``markup`` (HTML or plain text); ``<script>``/``<style>`` dropped."""
    return parse_html(markup or "").text


def plain_text(value: str | None) -> str:
    """One line of the reader-visible words of untrusted HTML or text, nothing else.

    Read again while it changes: ``&lt;script&gt;`` decodes to markup that must be dropped in
    turn, so no markup survives in any encoding.
    """
    text = value or ""
    for _ in range(3):
        visible = " ".join(parse_html(text, bullets=False).text.split())
        visible = _DANGLING_TAG.sub("", visible).rstrip()
        if visible == text:
            break
        text = visible
    return text
