"""Render the private note a technician reads in ServiceDesk Plus, as sanitised HTML and text.

Everything shown comes from untrusted places: ticket subjects and resolutions typed by end
users, KB titles, and LLM output that may have been steered by a hostile ticket. So every
dynamic string is first reduced to plain text (markup and script content removed), then escaped,
and the finished HTML is passed once more through nh3 with a small allow-list. Defence in depth:
either step alone would stop ``<script>``, the two together survive a bug in one of them.

This module decides what the note says, from the parts of :mod:`pipeline.note.sections`; the
word cap trims it as structured parts (:mod:`pipeline.note.trimming`), so the footer that
carries the idempotency marker (``AI-Agents enhancement <id>``) the poster searches for before
writing a second note always survives; :mod:`pipeline.note.layout` writes it out. The note lists
only the precedents and KB articles the relevance bar kept (the context holds no others), and
states the calibrated confidence (:mod:`pipeline.note.confidence`). Tickets too thin to
research get a short note instead (:mod:`pipeline.note.thin_ticket`): a ticket is thin when it
is shorter than the tenant's ``min_ticket_chars`` or, after dropping greetings, filler and stop
words, carries fewer than two words that could describe a problem and mentions no IP address.
"""

from __future__ import annotations

import re

from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.confidence import note_confidence
from pipeline.note.layout import NoteParts, RenderedNote, Section, Span, render_parts
from pipeline.note.sections import (
    CitationBook,
    candidate_steps,
    confidence_spans,
    kb_item,
    notices,
    safe_url,
    same_fix_groups,
    similar_item,
    statements,
    system_items,
)
from pipeline.note.trimming import TRIM_PLAN, trim_once
from pipeline.text.ticket_text import extract_ips, plain_text, salient_terms

MARKER_PREFIX = "AI-Agents enhancement"
DEFAULT_MAX_WORDS = 500
THIN_MIN_TERMS = 2


def is_thin(ticket: Ticket, *, min_chars: int) -> bool:
    text = f"{ticket.subject} {ticket.description}".strip()
    if len(text) < min_chars:
        return True
    terms = salient_terms(ticket.subject, ticket.description)
    return len(terms) < THIN_MIN_TERMS and not extract_ips(text)


def note_marker(enhancement_id: str) -> str:
    """The footer text that identifies an enhancement's note, searched for before posting."""
    if not enhancement_id or not enhancement_id.strip():
        raise ValueError("enhancement_id must not be empty")
    return f"{MARKER_PREFIX} {enhancement_id.strip()}"


def note_has_marker(note_html_or_text: str, enhancement_id: str) -> bool:
    """Whether a stored note carries this enhancement's marker.

    SDP may return the note re-escaped, with tags rewritten or stripped and whitespace changed,
    so compare visible text, and require the id to end there ("abc" must not match "abcd").
    """
    text = plain_text(note_html_or_text)
    ident = re.escape(note_marker(enhancement_id)[len(MARKER_PREFIX) + 1 :])
    pattern = rf"AI-Agents\s+enhancement\s+{ident}(?![\w-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def render_note(
    *,
    enhancement_id: str,
    context: TicketContext,
    synthesis: SynthesisResult,
    max_words: int = DEFAULT_MAX_WORDS,
    supersedes: str | None = None,
    feedback_links: list[tuple[str, str]] | None = None,
) -> RenderedNote:
    """Build the note, trimmed to ``max_words`` visible words unless the footer alone is longer.

    ``feedback_links`` are (label, URL) pairs shown above the footer and never trimmed.
    """
    parts = _build_parts(enhancement_id, context, synthesis, supersedes)
    parts.feedback_links = [(label, url) for label, url in feedback_links or () if safe_url(url)]
    note = render_parts(parts)
    for action, key, keep in TRIM_PLAN:
        while note.word_count > max_words and trim_once(
            parts, action, key, keep, note.word_count - max_words
        ):
            note = render_parts(parts)
    return note


def render_note_text(
    *,
    enhancement_id: str,
    context: TicketContext,
    synthesis: SynthesisResult,
    max_words: int = DEFAULT_MAX_WORDS,
    supersedes: str | None = None,
    feedback_links: list[tuple[str, str]] | None = None,
) -> str:
    """The same note as plain text, for the CLI and logs."""
    return render_note(
        enhancement_id=enhancement_id,
        context=context,
        synthesis=synthesis,
        max_words=max_words,
        supersedes=supersedes,
        feedback_links=feedback_links,
    ).text


def _build_parts(
    enhancement_id: str,
    context: TicketContext,
    synthesis: SynthesisResult,
    supersedes: str | None,
) -> NoteParts:
    enhancement = synthesis.enhancement if synthesis.mode == "llm" else None
    refs = CitationBook(context.similar_tickets, context.kb_articles, context.assets)
    full_notices, short_notices = notices(
        context.sources,
        None if enhancement is not None else (synthesis.reason or ""),
        supersedes,
        paused=synthesis.paused is not None,
    )
    confidence, short_confidence = confidence_spans(
        note_confidence(context.ranking, enhancement.confidence if enhancement else None)
    )
    body = {
        "causes": Section("Likely causes", []),
        "steps": Section("Next steps", [], ordered=True),
        "similar": Section(
            "Similar resolved tickets",
            [
                similar_item(group, with_resolution=enhancement is not None)
                for group in same_fix_groups(context.similar_tickets)
            ],
        ),
        "kb": Section("Knowledge-base articles", [kb_item(a) for a in context.kb_articles]),
        "systems": Section(
            "Systems mentioned", system_items(context.assets, context.unmatched_ips)
        ),
    }
    marker = note_marker(enhancement_id)
    if enhancement is not None:
        body["causes"].items = statements(enhancement.likely_causes, refs)
        body["steps"].items = statements(enhancement.next_steps, refs)
        model = plain_text(synthesis.model) or "unknown"
        return NoteParts(
            full_notices,
            short_notices,
            plain_text(enhancement.summary),
            body,
            confidence,
            short_confidence,
            f"{marker} · model {model}",
        )
    body["steps"].title = "Candidate next steps (how similar tickets were resolved)"
    body["steps"].items = candidate_steps(context.similar_tickets, context.kb_articles, refs)
    return NoteParts(
        full_notices,
        short_notices,
        _context_summary(context),
        body,
        confidence,
        short_confidence,
        f"{marker} · context only",
    )


def _context_summary(context: TicketContext) -> str:
    ticket = context.ticket
    subject = plain_text(ticket.subject) or f"ticket {plain_text(ticket.ticket_id)}"
    return (
        f"Ticket: {subject}. Found {len(context.similar_tickets)} similar resolved tickets, "
        f"{len(context.kb_articles)} knowledge-base articles and {len(context.assets)} "
        "known systems."
    )


__all__ = [
    "DEFAULT_MAX_WORDS",
    "MARKER_PREFIX",
    "THIN_MIN_TERMS",
    "RenderedNote",
    "Span",
    "is_thin",
    "note_has_marker",
    "note_marker",
    "render_note",
    "render_note_text",
]
