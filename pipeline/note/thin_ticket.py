"""The short note for a ticket too thin to research (``is_thin`` in
:mod:`pipeline.note.renderer`): searching history for "hi" / "test" only returns unrelated
tickets — a nearest neighbour always exists — so the note says what is missing and what to ask
the requester, in under ``THIN_MAX_WORDS`` words, with no tickets or articles.
"""

from __future__ import annotations

import html

from pipeline.models import Ticket
from pipeline.note.layout import RenderedNote
from pipeline.note.renderer import THIN_MIN_TERMS, is_thin, note_marker
from pipeline.text.ticket_text import plain_text

THIN_MAX_WORDS = 80
THIN_QUESTIONS = (
    "What were you trying to do, and what happened instead?",
    "The exact error message, or a screenshot.",
    "Which device, application or system, and since when?",
    "Who else is affected, and how urgent is it?",
)


def thin_ticket_note(enhancement_id: str, ticket: Ticket) -> RenderedNote:
    """The ≤ 80-word note: what is missing, what to ask; the marker keeps write-back idempotent."""
    said = " ".join(f"{ticket.subject} {ticket.description}".split())[:60] or "nothing"
    lead = (
        f"Not enough detail to research: the ticket only says \u201c{said}\u201d — no "
        "symptom, system or error is described, so no similar tickets or articles are "
        "suggested."
    )
    ask = "Ask the requester:"
    footer = note_marker(enhancement_id)
    items = "".join(f"<li>{html.escape(q)}</li>" for q in THIN_QUESTIONS)
    body_html = (
        f"<p><b>{html.escape(lead)}</b></p><p>{html.escape(ask)}</p><ol>{items}</ol>"
        f"<p><small>{html.escape(footer)}</small></p>"
    )
    text = "\n".join([lead, ask, *(f"{n}. {q}" for n, q in enumerate(THIN_QUESTIONS, 1)), footer])
    words = len(plain_text(body_html).split())
    return RenderedNote(html=body_html, text=text, word_count=words)


__all__ = ["THIN_MAX_WORDS", "THIN_MIN_TERMS", "THIN_QUESTIONS", "is_thin", "thin_ticket_note"]
