"""The demo's quality loop: the feedback links in a note, and resolving some demo tickets in
the SDP simulator so every tenant gets a suggestion hit rate.

A resolved demo ticket gets the resolution of one of the past tickets of its own scenario,
picked at random (seeded by the ticket id): like real life, it is often - not always - the fix
a similar past ticket had. Whether the note proposed that fix is then judged by the service
itself, through the ordinary resolved-ticket webhook.
"""

from __future__ import annotations

import html
import random
from html.parser import HTMLParser
from typing import Any

import httpx

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
    share: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Resolve every other completed demo ticket of each tenant (``share`` of them) in the
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
