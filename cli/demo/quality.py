"""The demo's quality loop: the feedback links in a note, resolving demo tickets in the SDP
simulator so every tenant gets a suggestion hit rate, and learning from those resolutions.

A resolved demo ticket gets the resolution of one of the past tickets of its own scenario,
picked at random (seeded by the ticket id): like real life, it is often - not always - the fix
a similar past ticket had. Whether the note proposed that fix is then judged by the service
itself, through the ordinary resolved-ticket webhook, which also labels the note's ranked
candidates. :func:`learn` refits the deployment's ranking from those outcomes (the same
``refit`` as ``ai-agents ranking fit``) and :func:`phase_quality` measures a batch of notes:
hit rate, how often the first precedent had the fix, the confidence stated and its ECE.
"""

from __future__ import annotations

import html
import random
import uuid
from html.parser import HTMLParser
from typing import Any

import asyncpg
import httpx

from db.pool import tenant_transaction
from pipeline.retrieval.ranking.quality import expected_calibration_error
from pipeline.retrieval.ranking.refit import ScopeResult, refit
from simulators.demo_data import load_demo_dataset
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import flat_payload, send_webhook_async


class _FeedbackAnchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        self._href = href if href and "/f/" in href else None

    def handle_data(self, data: str) -> None:
        if self._href:
            self.links.append({"label": data.strip(), "url": self._href})
            self._href = None


def feedback_links(note_html: str) -> list[dict[str, str]]:
    """The one-click feedback links of a note as SDP stored it: label and URL."""
    parser = _FeedbackAnchors()
    parser.feed(note_html)
    return parser.links


def _past_resolution(sdp: SimulatorState, tenant: str, ticket_id: str) -> str | None:
    expected = load_demo_dataset(tenant).expected_links.get(ticket_id)
    if expected is None or not expected.ticket_ids:
        return None
    past = random.Random(f"{tenant}:{ticket_id}").choice(expected.ticket_ids)
    content = (sdp.get_request(tenant, past).get("resolution") or {}).get("content")
    return html.unescape(content) if content else None


async def resolve_some(
    base_url: str,
    sdp: SimulatorState,
    creds: dict[str, dict[str, str]],
    enhancements: list[dict[str, Any]],
    share: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """Resolve ``share`` of each tenant's completed demo tickets (every one by default) in the
    simulator and send SDP's resolved-ticket webhook; returns per tenant resolved, hits and
    hit rate."""
    step = max(1, round(1 / share))
    chosen: list[dict[str, Any]] = []
    for tenant in dict.fromkeys(e["tenant"] for e in enhancements):
        done = [
            e
            for e in enhancements
            if e["tenant"] == tenant and e["status"] == "completed" and e["note_id"]
        ]
        chosen += done[::step]
    per_tenant: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for item in chosen:
            tenant, ticket_id = item["tenant"], item["ticket_id"]
            resolution = _past_resolution(sdp, tenant, ticket_id)
            if resolution is None:
                continue
            stored = sdp.resolve_request(tenant, ticket_id, resolution)
            response = await send_webhook_async(
                f"{base_url}/webhook/servicedesk/{tenant}/resolved",
                flat_payload(stored, event="resolved"),
                "hmac",
                creds[tenant]["webhook_secret"],
                client=http,
            )
            if response.status_code != 202:
                raise RuntimeError(
                    f"resolved webhook for {tenant}/{ticket_id} answered "
                    f"{response.status_code}: {response.text[:200]}"
                )
            hit = response.json().get("suggestion_hit")
            item["suggestion_hit"] = hit
            stats = per_tenant.setdefault(tenant, {"resolved": 0, "hits": 0})
            stats["resolved"] += 1
            stats["hits"] += bool(hit)
    for stats in per_tenant.values():
        stats["hit_rate"] = round(stats["hits"] / stats["resolved"], 3)
    return per_tenant


DEMO_MIN_OUTCOMES = 3  # the demo's few resolved notes are enough to show a refit (not to trust)


async def learn(pool: asyncpg.Pool) -> ScopeResult:
    """Refit the deployment's ranking from the notes resolved so far."""
    [result] = await refit(
        pool,
        tenants=[],
        min_deployment_outcomes=DEMO_MIN_OUTCOMES,
        min_tenant_outcomes=1_000_000,
    )
    return result


async def phase_quality(
    pool: asyncpg.Pool, enhancements: list[dict[str, Any]], notes: list[dict[str, Any]]
) -> dict[str, Any]:
    """One batch of the demo's notes after their tickets were resolved: suggestion hit rate,
    first precedent right, mean stated confidence and its ECE, precedents shown and words."""
    rows = []
    for item in enhancements:
        async with tenant_transaction(pool, item["tenant"]) as conn:
            row = await conn.fetchrow(
                """SELECT suggestion_hit, confidence, confidence_outcome,
                          (SELECT count(*) FROM ranking_examples r
                           WHERE r.enhancement_id = e.id AND r.shown) AS shown,
                          confidence_inputs->>'model' AS model
                   FROM enhancements e WHERE id = $1""",
                uuid.UUID(item["enhancement_id"]),
            )
        if row is not None and row["confidence_outcome"] is not None:
            rows.append(row)
    pairs = [(float(r["confidence"]), bool(r["confidence_outcome"])) for r in rows]
    n = len(rows)
    words = [note["words"] for note in notes]
    return {
        "notes": len(enhancements),
        "resolved": n,
        "hit_rate": round(sum(bool(r["suggestion_hit"]) for r in rows) / n, 3) if n else None,
        "first_right": round(sum(ok for _, ok in pairs) / n, 3) if n else None,
        "mean_confidence": round(sum(p for p, _ in pairs) / n, 3) if n else None,
        "ece": expected_calibration_error(pairs) if n else None,
        "shown_per_note": round(sum(r["shown"] for r in rows) / n, 2) if n else None,
        "max_words": max(words) if words else None,
        "models": sorted({r["model"] for r in rows if r["model"]}),
    }
