"""Render the private note a technician reads in ServiceDesk Plus, as sanitised HTML and text.

Everything shown comes from untrusted places: ticket subjects and resolutions typed by end
users, KB titles, and LLM output that may have been steered by a hostile ticket. So every
dynamic string is first reduced to plain text (markup and script content removed), then escaped,
and the finished HTML is passed once more through nh3 with a small allow-list. Defence in depth:
either step alone would stop ``<script>``, the two together survive a bug in one of them.

The note is built as structured parts and trimmed *before* rendering, lowest-value content first,
so the word cap never cuts a sentence in half or drops the footer that carries the idempotency
marker (``AI-Agents enhancement <id>``) the poster searches for before writing a second note.
How the parts are laid out as HTML and text, and the nh3 pass, live in :mod:`pipeline.note.layout`.

Tickets too thin to research ("hi" / "test", "Help" / "pls call me") get a short note instead
(``thin_ticket_note``): searching history for them only returns unrelated tickets — a nearest
neighbour always exists — so the note says what is missing and what to ask the requester, in
under ``THIN_MAX_WORDS`` words, with no tickets or articles. A ticket is thin when it is shorter
than the tenant's ``min_ticket_chars`` or, after dropping greetings, filler and stop words,
carries fewer than two words that could describe a problem and mentions no IP address.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from pipeline.models import (
    AssetMatch,
    CitedStatement,
    KBArticle,
    LLMEnhancement,
    SimilarTicket,
    SynthesisResult,
    Ticket,
    TicketContext,
)
from pipeline.note.layout import (
    ALLOWED_URL_SCHEMES,
    Item,
    NoteParts,
    RenderedNote,
    Section,
    Span,
    render_parts,
)
from pipeline.text.ticket_text import extract_ips, plain_text, salient_terms

MARKER_PREFIX = "AI-Agents enhancement"
DEFAULT_MAX_WORDS = 500

_ONE_LINE_WORDS = 30
_SOURCE_LABELS = {
    "sdp_ticket": "ticket details",
    "similar_tickets": "similar tickets",
    "kb_articles": "knowledge base",
    "ip_assets": "asset inventory",
}


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
    parts.feedback_links = [(label, url) for label, url in feedback_links or () if _safe_url(url)]
    note = render_parts(parts)
    for action, key, keep in _TRIM_PLAN:
        while note.word_count > max_words and _trim_once(
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
    refs = _CitationBook(context)
    notices: list[list[Span]] = []
    short: list[list[Span]] = []
    if supersedes:
        earlier = f"enhancement {plain_text(supersedes)}"
        notices.append(
            [
                ("b", "Updated analysis: "),
                ("", f"this note supersedes the earlier note from {earlier}."),
            ]
        )
        short.append([("", f"Supersedes {earlier}.")])
    if enhancement is None:
        reason = plain_text(synthesis.reason) or "no reason recorded"
        # paused (a budget or the provider's credit is spent) says so plainly, not "unavailable"
        heading = "AI summary paused " if synthesis.paused else "AI summary unavailable "
        notices.append(
            [
                ("b", heading),
                (
                    "",
                    f"({reason}). This note is built from the gathered context only: "
                    "similar resolved tickets, knowledge-base articles and the asset "
                    "inventory.",
                ),
            ]
        )
        short.append([("b", heading), ("", f"({reason}); context only.")])
    gaps = [
        f"{_SOURCE_LABELS.get(s.name, s.name)} ({s.status})"
        for s in context.sources
        if s.status in ("timeout", "error")
    ]
    if gaps:
        notices.append([("i", "Some context could not be gathered: " + ", ".join(gaps) + ".")])

    body = {
        "causes": Section("Likely causes", []),
        "steps": Section("Next steps", [], ordered=True),
        "similar": Section(
            "Similar resolved tickets",
            [
                _similar_item(t, with_resolution=enhancement is not None)
                for t in context.similar_tickets
            ],
        ),
        "kb": Section("Knowledge-base articles", [_kb_item(a) for a in context.kb_articles]),
        "systems": Section("Systems mentioned", _system_items(context)),
    }
    marker = note_marker(enhancement_id)
    if enhancement is not None:
        body["causes"].items = _statements(enhancement.likely_causes, refs)
        body["steps"].items = _statements(enhancement.next_steps, refs)
        confidence = _confidence(enhancement)
        model = plain_text(synthesis.model) or "unknown"
        return NoteParts(
            notices,
            short,
            plain_text(enhancement.summary),
            body,
            confidence,
            confidence[:1],
            f"{marker} · model {model}",
        )
    body["steps"].title = "Candidate next steps (how similar tickets were resolved)"
    body["steps"].items = _candidate_steps(context, refs)
    confidence = [
        (
            "",
            "Not assessed: no AI analysis was made; weigh the candidate steps by how "
            "closely each similar ticket matches.",
        )
    ]
    return NoteParts(
        notices,
        short,
        _context_summary(context),
        body,
        confidence,
        [("", "Not assessed.")],
        f"{marker} · context only",
    )


class _CitationBook:
    """Turns citation ids into references a technician can read; unknown ids are dropped."""

    def __init__(self, context: TicketContext) -> None:
        self._labels: dict[str, str] = {}
        for t in context.similar_tickets:
            self._labels[t.citation] = f"ticket #{plain_text(t.ticket_id)}"
        for a in context.kb_articles:
            self._labels[a.citation] = f"KB: {plain_text(a.title) or plain_text(a.article_id)}"
        for m in context.assets:
            self._labels[m.citation] = f"asset {plain_text(m.ip)} ({_asset_name(m)})"

    def labels(self, sources: list[str]) -> list[str]:
        seen: list[str] = []
        for source in sources:
            label = self._labels.get(source.strip())
            if label and label not in seen:
                seen.append(label)
        return seen


def _asset_name(match: AssetMatch) -> str:
    if plain_text(match.hostname):
        return plain_text(match.hostname)
    return f"subnet {match.network}" if match.match == "subnet" else "no hostname"


def _statements(statements: list[CitedStatement], refs: _CitationBook) -> list[Item]:
    items = []
    for statement in statements:
        spans: list[Span] = [("", plain_text(statement.text))]
        labels = refs.labels(statement.sources)
        if labels:
            spans.append(("i", f" (sources: {'; '.join(labels)})"))
        items.append(Item(spans))
    return items


def _similar_item(ticket: SimilarTicket, *, with_resolution: bool) -> Item:
    main: list[Span] = [
        ("b", f"#{plain_text(ticket.ticket_id)}"),
        ("", f" {plain_text(ticket.subject)}"),
        ("i", f" ({_score(ticket.score)})"),
    ]
    detail: list[Span] = []
    if with_resolution and plain_text(ticket.resolution):
        detail = [("", f"Resolution: {_one_line(ticket.resolution)}")]
    return Item(main, detail)


def _score(score: float) -> str:
    return f"{score:.0%} match" if 0.0 <= score <= 1.0 else f"score {score:.2f}"


def _kb_item(article: KBArticle) -> Item:
    title = plain_text(article.title) or plain_text(article.article_id)
    url = (article.url or "").strip()
    main: list[Span] = [(f"href:{url}", title) if _safe_url(url) else ("b", title)]
    excerpt = _one_line(article.excerpt)
    return Item(main, [("", excerpt)] if excerpt else [])


def _safe_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ALLOWED_URL_SCHEMES and bool(parts.netloc)


def _system_items(context: TicketContext) -> list[Item]:
    items = []
    for match in context.assets:
        labelled = (("role", match.role), ("owner", match.owner), ("location", match.location))
        facts = [f"{label} {plain_text(value)}" for label, value in labelled if plain_text(value)]
        how = "host match" if match.match == "host" else f"in subnet {match.network}"
        spans: list[Span] = [("code", plain_text(match.ip))]
        if match.hostname and plain_text(match.hostname):
            spans.extend([("", " → "), ("b", plain_text(match.hostname))])
        spans.append(("", " — " + "; ".join([*facts, how])))
        items.append(Item(spans))
    if context.unmatched_ips:
        spans = [("", "Not in the asset inventory: ")]
        for index, ip in enumerate(context.unmatched_ips):
            spans.extend([("", ", ")] if index else [])
            spans.append(("code", plain_text(ip)))
        items.append(Item(spans))
    return items


def _confidence(enhancement: LLMEnhancement) -> list[Span]:
    percent = round(enhancement.confidence * 100)
    reason = plain_text(enhancement.confidence_reason)
    return [("b", f"{percent}%")] + ([("", f" — {reason}")] if reason else [])


def _context_summary(context: TicketContext) -> str:
    ticket = context.ticket
    subject = plain_text(ticket.subject) or f"ticket {plain_text(ticket.ticket_id)}"
    return (
        f"Ticket: {subject}. Found {len(context.similar_tickets)} similar resolved tickets, "
        f"{len(context.kb_articles)} knowledge-base articles and {len(context.assets)} "
        "known systems."
    )


def _candidate_steps(context: TicketContext, refs: _CitationBook) -> list[Item]:
    steps = [
        Item([("", _one_line(t.resolution)), ("i", f" (sources: {refs.labels([t.citation])[0]})")])
        for t in context.similar_tickets
        if plain_text(t.resolution)
    ]
    if not steps:
        steps = [
            Item([("", "Follow the knowledge-base article"), ("i", f" ({label})")])
            for a in context.kb_articles
            for label in refs.labels([a.citation])
        ]
    return steps


def _one_line(value: str | None, limit: int = _ONE_LINE_WORDS) -> str:
    words = plain_text(value).split()
    return " ".join(words[:limit]) + ("…" if len(words) > limit else "")


# Least valuable first: (action, section, items to keep).
_TRIM_PLAN: tuple[tuple[str, str, int], ...] = (
    ("detail", "similar", 0),
    ("detail", "kb", 0),
    ("items", "similar", 1),
    ("items", "kb", 1),
    ("items", "causes", 1),
    ("items", "systems", 2),
    ("items", "steps", 2),
    ("summary", "", 12),
    ("compact", "", 0),
    ("items", "similar", 0),
    ("items", "kb", 0),
    ("items", "systems", 0),
    ("items", "causes", 0),
    ("items", "steps", 0),
    ("summary", "", 0),
)


def _trim_once(parts: NoteParts, action: str, key: str, keep: int, excess: int) -> bool:
    """Remove one unit of content by the plan step; False when that step has nothing left."""
    if action == "detail":
        for item in reversed(parts.body[key].items):
            if item.detail:
                item.detail = []
                return True
        return False
    if action == "items":
        items = parts.body[key].items
        if len(items) > keep:
            items.pop()
            return True
        return False
    if action == "summary":
        words = parts.summary.split()
        if len(words) <= keep:
            return False
        kept = max(keep, len(words) - excess - 1)
        parts.summary = " ".join(words[:kept]).rstrip("…") + "…" if kept else ""
        return True
    if parts.notices == parts.short_notices and parts.confidence == parts.short_confidence:
        return False
    parts.notices, parts.confidence = list(parts.short_notices), list(parts.short_confidence)
    return True


THIN_MIN_TERMS = 2
THIN_MAX_WORDS = 80
THIN_QUESTIONS = (
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
    return len(terms) < THIN_MIN_TERMS and not extract_ips(text)


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
