"""Resolved tickets become history: the one writer every way in uses.

The resolved-ticket webhook, the bulk importer, the local stack's demo seeding, the retrieval
evaluation and its benchmark all store a resolved ticket through ``store_resolved_ticket``, so
``ticket_history`` (what the similar-ticket search reads) is written the same way everywhere.
When the service had enhanced that ticket, the same transaction judges whether its note had
proposed the fix (the suggestion hit) and labels the note's ranked candidates, the learned
ranking's training data (:mod:`pipeline.retrieval.ranking.store`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.repositories.knowledge import upsert_resolved_ticket
from db.repositories.ranking import latest_ranked_enhancement
from pipeline.note.suggestion_quality import Verdict, assess_resolution
from pipeline.retrieval.ranking.store import label_examples
from pipeline.sdp.wire import map_sdp_request


@dataclass(frozen=True)
class ResolvedTicket:
    ticket_id: str
    subject: str
    description: str
    resolution: str
    priority: str | None
    tags: list[str]
    resolved_at: datetime | None

    @classmethod
    def from_sdp(cls, request: Mapping[str, Any]) -> ResolvedTicket:
        """SDP's v3 request object, through the one SDP mapper."""
        mapped = map_sdp_request(request)
        return cls(
            ticket_id=mapped.ticket_id,
            subject=mapped.subject,
            description=mapped.description,
            resolution=mapped.resolution,
            priority=mapped.priority,
            tags=mapped.tags,
            resolved_at=mapped.resolved_at,
        )


@dataclass(frozen=True)
class Stored:
    created: bool  # a new history row, not a refresh of one
    verdict: Verdict | None  # the note's suggestion hit, when this service enhanced the ticket


async def store_resolved_ticket(
    conn: asyncpg.Connection, tenant_id: str, ticket: ResolvedTicket, *, assess: bool = True
) -> Stored:
    """Insert or refresh the ticket in the tenant's history, inside the caller's tenant
    transaction; ``assess=False`` skips judging a note (seeding data no note ever saw)."""
    created = await upsert_resolved_ticket(
        conn,
        tenant_id=tenant_id,
        ticket_id=ticket.ticket_id,
        subject=ticket.subject,
        description=ticket.description,
        resolution=ticket.resolution,
        priority=ticket.priority,
        tags=ticket.tags,
        resolved_at=ticket.resolved_at,
    )
    if not assess:
        return Stored(created=bool(created), verdict=None)
    verdict = await assess_resolution(conn, ticket.ticket_id, ticket.resolution)
    ranked = await latest_ranked_enhancement(conn, ticket.ticket_id)
    if ranked is not None:
        await label_examples(conn, ranked, ticket.resolution)
    return Stored(created=bool(created), verdict=verdict)
