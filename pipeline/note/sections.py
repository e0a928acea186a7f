"""The note's parts, each built from the context as plain spans: notices, precedents, KB
articles, systems, cited statements, candidate steps and the confidence line.

Everything here is untrusted text reduced to plain text (:func:`plain_text`); the layout escapes
and sanitises it once more (:mod:`pipeline.note.layout`). A statement of the model is kept only
with a source the note shows, or with none at all: a claim whose every citation points at
something the note does not list (a hallucinated id, or a precedent the relevance bar left out)
is dropped rather than shown uncited.

**Notices** (:func:`notices`) are the lines above the summary that say how this note differs
from a normal one (it supersedes an earlier note, it has no AI analysis, some context is
missing). Each is a full form and a short form the word cap falls back to; a new notice is one
more pair appended there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.models import (
    AssetMatch,
    CitedStatement,
    KBArticle,
    SimilarTicket,
    SourceOutcome,
)
from pipeline.note.confidence import NoteConfidence
from pipeline.note.layout import ALLOWED_URL_SCHEMES, Item, Span
from pipeline.text.ticket_text import plain_text

_ONE_LINE_WORDS = 30
_KB_EXCERPT_WORDS = 20
_SOURCE_LABELS = {
    "sdp_ticket": "ticket details",
    "similar_tickets": "similar tickets",
    "kb_articles": "knowledge base",
    "ip_assets": "asset inventory",
}


def notices(
    sources: list[SourceOutcome],
    context_only: str | None,
    supersedes: str | None,
    paused: bool = False,
) -> tuple[list[list[Span]], list[list[Span]]]:
    """(full, short) notices, in display order; ``context_only`` is why the note has no AI
    analysis (None: it has one); ``paused``: because a budget or the provider's credit is
    spent, which the note says plainly rather than "unavailable"."""
    full: list[list[Span]] = []
    short: list[list[Span]] = []
    if supersedes:
        earlier = f"enhancement {plain_text(supersedes)}"
        full.append(
            [
                ("b", "Updated analysis: "),
                ("", f"this note supersedes the earlier note from {earlier}."),
            ]
        )
        short.append([("", f"Supersedes {earlier}.")])
    if context_only is not None:
        reason = plain_text(context_only) or "no reason recorded"
        heading = "AI summary paused " if paused else "AI summary unavailable "
        full.append(
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
        for s in sources
        if s.status in ("timeout", "error")
    ]
    if gaps:
        full.append([("i", "Some context could not be gathered: " + ", ".join(gaps) + ".")])
    return full, short


class CitationBook:
    """Turns citation ids into references a technician can read; unknown ids are dropped."""

    def __init__(
        self, tickets: list[SimilarTicket], articles: list[KBArticle], assets: list[AssetMatch]
    ) -> None:
        self._labels: dict[str, str] = {}
        for t in tickets:
            self._labels[t.citation] = f"ticket #{plain_text(t.ticket_id)}"
        for a in articles:
            self._labels[a.citation] = f"KB: {plain_text(a.title) or plain_text(a.article_id)}"
        for m in assets:
            self._labels[m.citation] = f"asset {plain_text(m.ip)} ({asset_name(m)})"

    def labels(self, sources: list[str]) -> list[str]:
        seen: list[str] = []
        for source in sources:
            label = self._labels.get(source.strip())
            if label and label not in seen:
                seen.append(label)
        return seen


def asset_name(match: AssetMatch) -> str:
    if plain_text(match.hostname):
        return plain_text(match.hostname)
    return f"subnet {match.network}" if match.match == "subnet" else "no hostname"


SAME_FIX = 0.8  # word-set overlap above which two resolutions say the same fix


def _words(text: str) -> set[str]:
    return {w.strip(".,;:()'\"").lower() for w in plain_text(text).split()} - {""}


def statements(items: list[CitedStatement], refs: CitationBook) -> list[Item]:
    """The model's causes or steps, each with its sources. A statement that says what an
    earlier one said (the same fix from another precedent) is listed once, citing both."""
    kept: list[tuple[set[str], str, list[str]]] = []
    for statement in items:
        labels = refs.labels(statement.sources)
        if statement.sources and not labels:
            continue  # it cites only what the note does not show
        words = _words(statement.text)
        for seen, _text, seen_labels in kept:
            if words and len(words & seen) / max(len(words | seen), 1) >= SAME_FIX:
                seen_labels.extend(label for label in labels if label not in seen_labels)
                break
        else:
            kept.append((words, plain_text(statement.text), list(labels)))
    out = []
    for _words_of, text, labels in kept:
        spans: list[Span] = [("", text)]
        if labels:
            spans.append(("i", f" (sources: {'; '.join(labels)})"))
        out.append(Item(spans))
    return out


def same_fix_groups(tickets: list[SimilarTicket]) -> list[list[SimilarTicket]]:
    """Precedents grouped by fix, in the note's order: a history holds the same fix written up
    many times, and a technician needs it once, with where else it worked."""
    groups: list[tuple[set[str], list[SimilarTicket]]] = []
    for ticket in tickets:
        words = _words(ticket.resolution)
        for seen, group in groups:
            overlap = len(words & seen) / max(len(words | seen), 1)
            if words and overlap >= SAME_FIX:
                group.append(ticket)
                break
        else:
            groups.append((words, [ticket]))
    return [group for _, group in groups]


def similar_item(group: list[SimilarTicket], *, with_resolution: bool) -> Item:
    """The best precedent of a group; the others only by number ("same fix in")."""
    ticket, others = group[0], group[1:]
    note = _score(ticket)
    if others:
        note += "; same fix in " + ", ".join(f"#{plain_text(t.ticket_id)}" for t in others)
    main: list[Span] = [
        ("b", f"#{plain_text(ticket.ticket_id)}"),
        ("", f" {plain_text(ticket.subject)}"),
        ("i", f" ({note})"),
    ]
    detail: list[Span] = []
    if with_resolution and plain_text(ticket.resolution):
        detail = [("", f"Resolution: {one_line(ticket.resolution)}")]
    return Item(main, detail)


def _score(ticket: SimilarTicket) -> str:
    if ticket.relevance is not None:
        return f"{ticket.relevance:.0%} likely match"
    score = ticket.score
    return f"{score:.0%} match" if 0.0 <= score <= 1.0 else f"score {score:.2f}"


def kb_item(article: KBArticle) -> Item:
    title = plain_text(article.title) or plain_text(article.article_id)
    url = (article.url or "").strip()
    main: list[Span] = [(f"href:{url}", title) if safe_url(url) else ("b", title)]
    excerpt = one_line(article.excerpt, _KB_EXCERPT_WORDS)
    return Item(main, [("", excerpt)] if excerpt else [])


def safe_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ALLOWED_URL_SCHEMES and bool(parts.netloc)


def system_items(assets: list[AssetMatch], unmatched_ips: list[str]) -> list[Item]:
    items = []
    for match in assets:
        labelled = (("role", match.role), ("owner", match.owner), ("location", match.location))
        facts = [f"{label} {plain_text(value)}" for label, value in labelled if plain_text(value)]
        how = "host match" if match.match == "host" else f"in subnet {match.network}"
        spans: list[Span] = [("code", plain_text(match.ip))]
        if match.hostname and plain_text(match.hostname):
            spans.extend([("", " → "), ("b", plain_text(match.hostname))])
        spans.append(("", " — " + "; ".join([*facts, how])))
        items.append(Item(spans))
    if unmatched_ips:
        spans = [("", "Not in the asset inventory: ")]
        for index, ip in enumerate(unmatched_ips):
            spans.extend([("", ", ")] if index else [])
            spans.append(("code", plain_text(ip)))
        items.append(Item(spans))
    return items


def confidence_spans(confidence: NoteConfidence | None) -> tuple[list[Span], list[Span]]:
    """(full, short) confidence line: the level and the calibrated percentage, and what it is
    the probability of."""
    if confidence is None:
        line: list[Span] = [("", "Not assessed: this note's precedents were not ranked.")]
        return line, line
    head: list[Span] = [("b", f"{confidence.level} ({confidence.percent}%)")]
    if confidence.first_ticket is not None and confidence.first_shown:
        what = (
            f" that the first precedent, ticket #{plain_text(confidence.first_ticket)}, "
            "points to the fix (calibrated on resolved tickets)."
        )
    else:
        what = ": no past ticket is close enough to show; treat the steps as general guidance."
    return [*head, ("", what)], head


def candidate_steps(
    tickets: list[SimilarTicket], articles: list[KBArticle], refs: CitationBook
) -> list[Item]:
    """A context-only note's steps: each distinct fix of the shown precedents, citing every
    precedent that had it."""
    steps = [
        Item(
            [
                ("", one_line(group[0].resolution)),
                ("i", f" (sources: {'; '.join(refs.labels([t.citation for t in group]))})"),
            ]
        )
        for group in same_fix_groups([t for t in tickets if plain_text(t.resolution)])
    ]
    if not steps:
        steps = [
            Item([("", "Follow the knowledge-base article"), ("i", f" ({label})")])
            for a in articles
            for label in refs.labels([a.citation])
        ]
    return steps


def one_line(value: str | None, limit: int = _ONE_LINE_WORDS) -> str:
    words = plain_text(value).split()
    return " ".join(words[:limit]) + ("…" if len(words) > limit else "")
