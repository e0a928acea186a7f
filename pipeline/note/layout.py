"""The note's structure (sections of items made of styled spans) and how it is written out as
sanitised HTML for SDP and plain text for the CLI.

Separate from :mod:`pipeline.note.renderer`, which decides *what* the note says and what to
drop first under the word cap; this module only decides how a given structure looks. Every
span is escaped here and the finished HTML goes once more through nh3 with a small
allow-list, so no caller can put markup into a note by accident. ``word_count`` is measured on
the visible text of that final HTML because that is what the technician sees and what the cap
is about.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import nh3

from pipeline.text.ticket_text import plain_text

ALLOWED_TAGS = frozenset(
    {"p", "h3", "h4", "ul", "ol", "li", "b", "strong", "i", "em", "code", "br", "a"}
)
ALLOWED_ATTRIBUTES = {"a": {"href"}}
ALLOWED_URL_SCHEMES = frozenset({"http", "https"})


# Inline content: (style, text) where style is "", "b", "i", "code" or "href:<url>".
Span = tuple[str, str]


@dataclass(frozen=True)
class RenderedNote:
    """``html`` goes to SDP, ``text`` to the CLI; ``word_count`` counts the HTML's visible words."""

    html: str
    text: str
    word_count: int


@dataclass
class Item:
    main: list[Span]
    detail: list[Span] = field(default_factory=list)


@dataclass
class Section:
    title: str
    items: list[Item]
    ordered: bool = False


@dataclass
class NoteParts:
    """The note before rendering; trimming mutates it, the short_* fields are compact forms."""

    notices: list[list[Span]]
    short_notices: list[list[Span]]
    summary: str
    body: dict[str, Section]  # keys: causes, steps, similar, kb, systems (in display order)
    confidence: list[Span]
    short_confidence: list[Span]
    footer: str
    # (label, URL) one-click feedback links; never trimmed, shown just above the footer
    feedback_links: list[tuple[str, str]] = field(default_factory=list)


def render_parts(parts: NoteParts) -> RenderedNote:
    html_parts = ["<h3>AI-Agents ticket analysis</h3>"]
    text_parts = ["AI-Agents ticket analysis", ""]
    for notice in parts.notices:
        html_parts.append(f"<p>{_html_spans(notice)}</p>")
        text_parts.append(_text_spans(notice))
    if parts.summary:
        html_parts.append(f"<h4>Summary</h4><p>{html.escape(parts.summary)}</p>")
        text_parts.extend(["", "Summary", f"  {parts.summary}"])
    for section in parts.body.values():
        if not section.items:
            continue
        html_parts.append(f"<h4>{html.escape(section.title)}</h4>")
        text_parts.extend(["", section.title])
        tag = "ol" if section.ordered else "ul"
        html_parts.append(f"<{tag}>")
        for number, item in enumerate(section.items, start=1):
            detail = f"<br>{_html_spans(item.detail)}" if item.detail else ""
            html_parts.append(f"<li>{_html_spans(item.main)}{detail}</li>")
            bullet = f"{number}." if section.ordered else "-"
            text_parts.append(f"  {bullet} {_text_spans(item.main)}")
            if item.detail:
                text_parts.append(f"    {_text_spans(item.detail)}")
        html_parts.append(f"</{tag}>")
    html_parts.append(f"<h4>Confidence</h4><p>{_html_spans(parts.confidence)}</p>")
    text_parts.extend(["", "Confidence", f"  {_text_spans(parts.confidence)}"])
    if parts.feedback_links:
        html_parts.append(f"<p>{_html_spans(_feedback_spans(parts.feedback_links))}</p>")
        text_parts.extend(["", FEEDBACK_PROMPT.strip()])
        text_parts.extend(f"  {label}: {url}" for label, url in parts.feedback_links)
    html_parts.append(f"<p><i>{html.escape(parts.footer)}</i></p>")
    text_parts.extend(["", "-- ", parts.footer])
    note_html = nh3.clean(
        "".join(html_parts),
        tags=set(ALLOWED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    words = len(plain_text(note_html).split())
    return RenderedNote(html=note_html, text="\n".join(text_parts), word_count=words)


FEEDBACK_PROMPT = "Was this note useful? "


def _feedback_spans(links: list[tuple[str, str]]) -> list[Span]:
    """Thumbs first, then "Rate: 1 2 3 4 5"; labels of ratings are shown as bare digits."""
    spans: list[Span] = [("b", FEEDBACK_PROMPT)]
    for index, (label, url) in enumerate(links):
        rating = label.split("/")[0] if label.endswith("/5") else None
        if rating is not None and (index == 0 or not links[index - 1][0].endswith("/5")):
            spans.append(("", " · Rate: "))
        elif index:
            spans.append(("", " " if rating is not None else " · "))
        spans.append((f"href:{url}", rating or label))
    return spans


def _html_spans(spans: list[Span]) -> str:
    out = []
    for style, text in spans:
        escaped = html.escape(text, quote=True)
        if style.startswith("href:"):
            out.append(f'<a href="{html.escape(style[5:], quote=True)}">{escaped}</a>')
        elif style:
            out.append(f"<{style}>{escaped}</{style}>")
        else:
            out.append(escaped)
    return "".join(out)


def _text_spans(spans: list[Span]) -> str:
    return "".join(text for _, text in spans)
