"""Bulk import of a tenant's resolved SDP tickets into `ticket_history`.

The similar-ticket search is only as good as this history, and it must be loaded without
hurting the tenant's live traffic: cloud SDP allows about 20 calls a minute per account,
shared with the note write-backs. So the import asks the list API for the fields it needs
(one call per 100 tickets) and fetches a ticket on its own only when the list row lacks its
description or resolution; it paces itself below the tenant's SDP rate; and it lets the client
ride out 429s as SDP's `Retry-After` asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.sdp_url_policy import SdpUrlPolicy
from pipeline.retrieval.embeddings import Embedder
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.vector_index import TicketText
from pipeline.sdp.client import SdpClient
from pipeline.sdp.wire import SdpError, SdpNotFound, read_time
from pipeline.tenancy.config import TenantRuntime
from pipeline.tenancy.rate_limiter import LocalRateLimits

from .embedding import BatchEmbedding
from .outcome import ImportInterrupted, ImportResult, ProgressCallback
from .storage import require_tenant, write_batch

DEFAULT_STATUSES = ("Resolved", "Closed")
LIST_FIELDS = [
    "description",
    "resolution",
    "priority",
    "category",
    "subcategory",
    "item",
    "status",
    "resolved_time",
    "completed_time",
]
BATCH_SIZE = 50


@dataclass
class SdpCallStats:
    """An `SdpClient(on_call=...)` hook: counts calls and throttled attempts for the report."""

    calls: int = 0
    throttled: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def __call__(self, outcome: str, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == "rate_limited":
            self.throttled += 1


def import_client(
    tenant: TenantRuntime,
    *,
    calls_per_minute: int | None = None,
    on_call: SdpCallStats | None = None,
    url_policy: SdpUrlPolicy | None = None,
) -> SdpClient:
    """An SdpClient tuned for a long batch: patient retries, paced at `calls_per_minute`.

    The default pace is half the tenant's SDP rate, because the live service shares the
    tenant's SDP quota and this process cannot see its limiter (separate Ray actors).
    """
    pace = calls_per_minute or max(1, tenant.settings.sdp_rate(tenant.sdp_edition) // 2)
    limiter = LocalRateLimits()

    async def before_call() -> None:
        await limiter.acquire(tenant.tenant_id, "sdp_import", pace)

    return SdpClient(
        tenant.sdp_base_url,
        tenant.sdp_api_key,
        tenant.sdp_edition,
        portal=tenant.sdp_portal,
        timeout_s=30.0,
        max_attempts=8,
        retry_after_cap_s=120.0,
        backoff_max_s=60.0,
        before_call=before_call,
        on_call=on_call,
        url_policy=url_policy,
    )


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("name")
    text = str(value).strip() if value is not None else ""
    return text or None


def _needs_detail(row: Mapping[str, Any]) -> bool:
    resolution = row.get("resolution")
    has_resolution = bool(
        resolution.get("content") if isinstance(resolution, Mapping) else resolution
    )
    return not row.get("description") or not has_resolution


def search_criteria(since: datetime, statuses: Sequence[str]) -> list[dict[str, Any]]:
    """SDP v3 criteria: resolved since `since` (ms-epoch string) with one of `statuses`."""
    criteria: list[dict[str, Any]] = [
        {
            "field": "resolved_time",
            "condition": "greater or equal",
            "value": str(int(since.timestamp() * 1000)),
        }
    ]
    if statuses:
        criteria.append(
            {
                "field": "status.name",
                "condition": "is",
                "values": list(statuses),
                "logical_operator": "AND",
            }
        )
    return criteria


class _TicketImport:
    """One run's state: the pending batch and the result it accumulates."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: SdpClient,
        result: ImportResult,
        *,
        statuses: Sequence[str],
        since: datetime,
        embedder: Embedder | None = None,
    ) -> None:
        self.pool = pool
        self.vectors = BatchEmbedding(pool, embedder, result)
        self.client = client
        self.result = result
        self.wanted = {s.lower() for s in statuses}
        self.since = since
        self.pending: list[ResolvedTicket] = []

    async def take(self, row: dict[str, Any]) -> None:
        ticket_id = str(row.get("id"))
        request = row
        if _needs_detail(row):
            try:
                request = {**row, **await self.client.get_request(ticket_id)}
            except SdpNotFound:
                self.result.skip(f"#{ticket_id}", "not found", "deleted after it was listed")
                return
        reason = self._excluded(request)
        if reason:
            self.result.skip(f"#{ticket_id}", *reason)
            return
        record = ResolvedTicket.from_sdp(request)
        if not record.resolution:
            self.result.skip(f"#{ticket_id}", "no resolution")
            return
        self.pending.append(record)
        if len(self.pending) >= BATCH_SIZE:
            await self.flush()

    def _excluded(self, request: Mapping[str, Any]) -> tuple[str, str] | None:
        """Re-check the criteria locally: an SDP build that ignores one must not leak rows."""
        status = _name(request.get("status"))
        if self.wanted and status and status.lower() not in self.wanted:
            return "status not imported", status
        resolved = read_time(request.get("resolved_time"), "resolved_time", strict=False)
        if resolved is not None and resolved < self.since:
            return "resolved before the window", resolved.isoformat()
        return None

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        tenant_id = self.result.tenant_id

        async def store(conn: asyncpg.Connection, ticket: ResolvedTicket) -> bool:
            return (await store_resolved_ticket(conn, tenant_id, ticket)).created

        new, updated = await write_batch(self.pool, tenant_id, batch, store)
        self.result.new += new
        self.result.updated += updated
        await self.vectors.tickets(
            [TicketText(r.ticket_id, r.subject, r.description) for r in batch]
        )


async def import_resolved_tickets(
    pool: asyncpg.Pool,
    tenant_id: str,
    client: SdpClient,
    *,
    days: int = 90,
    statuses: Sequence[str] = DEFAULT_STATUSES,
    limit: int | None = None,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    stats: SdpCallStats | None = None,
    embedder: Embedder | None = None,
) -> ImportResult:
    """Page the tenant's SDP for tickets resolved in the last `days` and upsert them.

    Newest first, so `limit` keeps the most recent tickets and a ticket resolved during the
    run shifts later pages down (seen twice, de-duplicated) rather than out of sight.
    Raises `ImportInterrupted` (carrying the committed part) when SDP gives up mid-way.
    With an `embedder`, each committed batch is embedded for vector search too.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    await require_tenant(pool, tenant_id)
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    result = ImportResult(
        "tickets", tenant_id, details={"since": since.isoformat(), "statuses": list(statuses)}
    )
    run = _TicketImport(pool, client, result, statuses=statuses, since=since, embedder=embedder)
    rows = client.iter_requests(
        search_criteria(since, statuses),
        sort_field="resolved_time",
        sort_order="desc",
        fields_required=LIST_FIELDS,
    )
    try:
        async with aclosing(rows):
            async for row in rows:
                result.seen += 1
                await run.take(row)
                if progress is not None:
                    progress(result.seen, limit)
                if limit is not None and result.seen >= limit:
                    break
        await run.flush()
    except SdpError as err:
        await run.flush()
        _record_stats(result, stats)
        where = (
            f"after {result.seen} ticket(s), {result.imported} saved (re-run to resume)"
            if result.seen
            else "before any ticket was fetched"
        )
        raise ImportInterrupted(f"SDP failed {where}: {err}", result) from err
    _record_stats(result, stats)
    return result


def _record_stats(result: ImportResult, stats: SdpCallStats | None) -> None:
    if stats is not None:
        result.details["sdp_calls"] = stats.calls
        result.details["sdp_throttled"] = stats.throttled
