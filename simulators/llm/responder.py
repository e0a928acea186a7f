"""Deterministic "model": reads the service's prompt and answers with a plausible enhancement.

The simulator is an independent peer, so the prompt layout is duplicated here rather than
imported from ``pipeline.llm.contract``: if the service changes its prompt without telling anyone,
these answers stop citing the sources and the tests notice. The layout is::

    <<<TICKET>>> ... subject: <text> ... <<<END TICKET>>>
    SOURCES (cite only these ids):
    [ticket:<id>] subject: ... | resolution: ... | score: ...
    [kb:<id>] title: ... | excerpt: ... | score: ...
    [asset:<ip>] hostname: ... | role: ... | owner: ... | location: ... | match: ...

Only tags after the ticket block count, so a ticket that mentions ``[ticket:1]`` in its text
does not become a source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

TICKET_START = "<<<TICKET>>>"
TICKET_END = "<<<END TICKET>>>"
_TAG_LINE = re.compile(r"^\[(ticket|kb|asset):([^\]]+)\]\s*(.*)$")


@dataclass
class Source:
    kind: str
    id: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass
class ParsedPrompt:
    ticket_id: str = ""
    subject: str = ""
    sources: list[Source] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Source]:
        """Sources of one kind, best first: by the ``score`` the service computed (its fused
        retrieval rank), prompt order among equals and for sources without a score."""
        found = [s for s in self.sources if s.kind == kind]
        return sorted(found, key=lambda s: -_score(s))


def _score(source: Source) -> float:
    try:
        return float(source.fields.get("score", ""))
    except ValueError:
        return float("-inf")


def message_text(content: Any) -> str:
    """Content may be a string or a list of ``{"type":"text","text":...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def parse_prompt(messages: list[dict[str, Any]]) -> ParsedPrompt:
    users = [m for m in messages if m.get("role") == "user"]
    text = message_text(users[-1].get("content")) if users else ""
    parsed = ParsedPrompt()
    start = text.find(TICKET_START)
    end = text.find(TICKET_END, start + 1) if start >= 0 else -1
    if start >= 0 and end > start:
        block, rest = text[start + len(TICKET_START) : end], text[end + len(TICKET_END) :]
        for line in block.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "id" and not parsed.ticket_id:
                parsed.ticket_id = value.strip()
            elif key.strip() == "subject" and not parsed.subject:
                parsed.subject = value.strip()
    else:  # not our prompt layout: still answer something sensible
        first = text.strip().splitlines()[0] if text.strip() else ""
        parsed.subject, rest = first[:200], text
    for line in rest.splitlines():
        match = _TAG_LINE.match(line.strip())
        if not match:
            continue
        fields: dict[str, str] = {}
        for part in match.group(3).split(" | "):
            key, sep, value = part.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        parsed.sources.append(Source(match.group(1), match.group(2).strip(), fields))
    return parsed


def _words(text: str, n: int) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def _stmt(text: str, *sources: str) -> dict[str, Any]:
    return {"text": text[:1000], "sources": list(sources)}


def build_enhancement(parsed: ParsedPrompt) -> dict[str, Any]:
    """Same prompt, same answer: causes and steps cite exactly the tagged sources."""
    tickets, kbs, assets = parsed.of_kind("ticket"), parsed.of_kind("kb"), parsed.of_kind("asset")
    causes: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for t in tickets[:2]:
        causes.append(
            _stmt(
                f"Same symptoms as ticket {t.id} ({_words(t.fields.get('subject', ''), 10)})",
                t.citation,
            )
        )
    for a in assets[:3]:
        host = a.fields.get("hostname", "unknown host")
        causes.append(
            _stmt(
                f"A fault on {host} ({a.fields.get('role', 'unknown role')}) at {a.id}", a.citation
            )
        )
    for t in tickets[:3]:
        steps.append(
            _stmt(
                f"Apply the fix from ticket {t.id}: {_words(t.fields.get('resolution', ''), 12)}",
                t.citation,
            )
        )
    for k in kbs[:3]:
        steps.append(_stmt(f"Follow KB article {k.id}: {k.fields.get('title', '')}", k.citation))
    for a in assets[:3]:
        steps.append(
            _stmt(
                f"Check {a.fields.get('hostname', a.id)} ({a.id}); owner "
                f"{a.fields.get('owner', 'unknown')}, "
                f"location {a.fields.get('location', 'unknown')}",
                a.citation,
            )
        )
    if not causes:
        causes.append(_stmt("Not enough context to determine a likely cause"))
    if not steps:
        steps.append(
            _stmt("Ask the requester for exact error messages, affected users and when it started")
        )
    n = len(parsed.sources)
    if n:
        reason = (
            f"Based on {len(tickets)} similar ticket(s), {len(kbs)} KB article(s) "
            f"and {len(assets)} asset(s)."
        )
    else:
        reason = "No similar tickets, KB articles or assets were provided; the context is thin."
    subject = parsed.subject or "(no subject)"
    return {
        "summary": f"The requester reports: {subject}"[:2000],
        "likely_causes": causes[:8],
        "next_steps": steps[:10],
        "related_tickets": [t.citation for t in tickets],
        "related_articles": [k.citation for k in kbs],
        "related_assets": [a.citation for a in assets],
        "confidence": round(min(0.9, 0.3 + 0.1 * n), 2),
        "confidence_reason": reason,
    }


def hallucinated(enhancement: dict[str, Any], citation: str) -> dict[str, Any]:
    """The answer plus a step (and related entry) citing an id the prompt never gave."""
    out = json.loads(json.dumps(enhancement))
    kind, _, ident = citation.partition(":")
    out["next_steps"] = (
        out["next_steps"]
        + [_stmt(f"Apply the workaround from [{citation}] (restart the service)", citation)]
    )[:10]
    related = {"ticket": "related_tickets", "kb": "related_articles", "asset": "related_assets"}
    out.setdefault(related.get(kind, "related_tickets"), []).append(citation)
    return out


MALFORMED = {"summary": "", "likely_causes": "see above", "confidence": 1.7}
NOT_JSON = "Sure! The VPN gateway is probably overloaded; try restarting it."
