"""Tickets too thin to research ("hi" / "test", "Help" / "pls call me") get a short note.

Searching history for such a ticket can only return unrelated tickets — a nearest neighbour
always exists — and a 140-word note of them costs the technician time. What helps is saying
what is missing and what to ask the requester, in under 80 words, with no tickets or articles.

A ticket is thin when it is shorter than the tenant's ``min_ticket_chars`` or, after dropping
greetings, filler and stop words, carries fewer than two words that could describe a problem
and mentions no IP address.
"""

from __future__ import annotations

import html

from pipeline.models import Ticket
from pipeline.note.layout import RenderedNote
from pipeline.note.renderer import note_marker
from pipeline.text.html_text import plain_text
from pipeline.text.ip_extraction import extract_ips
from pipeline.text.terms import salient_terms

MIN_SALIENT_TERMS = 2
MAX_WORDS = 80
QUESTIONS = (
    "What were you trying to do, and what happened instead?",
    "The exact error message, or a screenshot.",
    "Which device, application or system, and since when?",
    "Who else is affected, and how urgent is it?",
)


def is_thin(ticket: Ticket, *, min_chars: int) -> bool:
    text = f"{ticket.subject} {ticket.description}".strip()
    if len(text) < min_chars:
        return True
    terms = salient_terms(ticket.subject, ticket.description)
    return len(terms) < MIN_SALIENT_TERMS and not extract_ips(text)


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
    items = "".join(f"<li>{html.escape(q)}</li>" for q in QUESTIONS)
    body_html = (
        f"<p><b>{html.escape(lead)}</b></p><p>{html.escape(ask)}</p><ol>{items}</ol>"
        f"<p><small>{html.escape(footer)}</small></p>"
    )
    text = "\n".join([lead, ask, *(f"{n}. {q}" for n, q in enumerate(QUESTIONS, 1)), footer])
    words = len(plain_text(body_html).split())
    return RenderedNote(html=body_html, text=text, word_count=words)
