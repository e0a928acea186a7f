"""Batch re-enhancement: which past enhancements to redo, and the durable jobs that redo them.

A re-enhancement is an ordinary `queued` job (priority -1, `batch_id`, `supersedes`), so the
live dispatcher, pools and per-tenant rate limits do the work exactly as for a webhook, and a
tenant's live jobs (priority 0) are always claimed before its batch jobs. Nothing here calls
Ray; `pipeline.batch.reenhance_run` paces the batch and `scripts/reenhance.py` runs it as a Ray Job.

Idempotent by construction: a batch item's dedupe key is ``reenhance:<batch>:<original>``, so
running the same submission again can never create a second job for the same original, and
the selection ignores the batch's own rows, so a resumed run sees the same candidates.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from core.tenant_types import Edition
from db.repositories import enhancements as jobs
from pipeline.observability.tracing import current_carrier, trace_id_hex, tracer
from pipeline.tenancy.config import TenantSettings

StatusFilter = Literal["failed", "context_only", "any"]
STATUS_FILTERS: tuple[StatusFilter, ...] = ("failed", "context_only", "any")
BATCH_PRIORITY = -1  # below every live job of the tenant (webhooks enqueue at 0)
REENHANCE_EVENT = "reenhance"
LOG_PREFIX = "reenhance:"

# Per item: one synthesis call; the write-back reads the ticket's notes, then adds one.
LLM_CALLS_PER_ITEM = 1
SDP_CALLS_PER_ITEM = 2


class ReenhanceError(ValueError):
    """A batch that cannot be started as asked (bad filter, unknown or disabled tenant)."""


@dataclass(frozen=True)
class ReenhanceFilters:
    """What to redo. All given criteria must hold; the two feedback criteria are alternatives
    ("thumbs-down *or* rated at most N"), because both mean "the technician did not like it".
    Dates apply to when the enhancement was received (`since` inclusive, `until` exclusive)."""

    tenant_id: str
    since: datetime | None = None
    until: datetime | None = None
    statuses: StatusFilter = "failed"
    thumbs_down: bool = False
    max_rating: int | None = None
    ticket_ids: Sequence[str] | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ReenhanceError("a tenant is required")
        if self.statuses not in STATUS_FILTERS:
            raise ReenhanceError(f"status must be one of {', '.join(STATUS_FILTERS)}")
        if self.since and self.until and self.since >= self.until:
            raise ReenhanceError("since must be before until")
        if self.max_rating is not None and not 1 <= self.max_rating <= 5:
            raise ReenhanceError("max rating must be between 1 and 5")
        if self.limit is not None and self.limit < 1:
            raise ReenhanceError("limit must be at least 1")
        if self.ticket_ids is not None and not self.ticket_ids:
            raise ReenhanceError("the ticket list is empty")

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        out["until"] = self.until.isoformat() if self.until else None
        out["ticket_ids"] = len(self.ticket_ids) if self.ticket_ids is not None else None
        return out


def default_status(
    *, thumbs_down: bool, max_rating: int | None, ticket_ids: Sequence[str] | None
) -> StatusFilter:
    """Failed jobs unless the operator pointed at notes (feedback or a ticket list): feedback
    is given on notes that were written, and a ticket list means "these, whatever happened"."""
    return "any" if thumbs_down or max_rating is not None or ticket_ids else "failed"


@dataclass(frozen=True)
class Candidate:
    enhancement_id: uuid.UUID
    ticket_id: str
    status: str
    outcome: str | None
    received_at: datetime
    has_description: bool


_SELECT = """
SELECT e.id, e.ticket_id, e.status, e.outcome, e.received_at,
       coalesce((e.payload->>'has_description')::boolean, true) AS has_description
FROM enhancements e
WHERE e.tenant_id = $1
  AND e.status IN ('completed', 'failed')
  AND ($2::text = 'any'
       OR ($2 = 'failed' AND e.status = 'failed')
       OR ($2 = 'context_only' AND e.status = 'completed' AND e.outcome = 'context_only'))
  AND ($3::timestamptz IS NULL OR e.received_at >= $3)
  AND ($4::timestamptz IS NULL OR e.received_at < $4)
  AND ($5::text[] IS NULL OR e.ticket_id = ANY($5))
  AND ((NOT $6::boolean AND $7::integer IS NULL)
       OR EXISTS (SELECT 1 FROM enhancement_feedback f
                  WHERE f.tenant_id = e.tenant_id AND f.enhancement_id = e.id
                    AND (($6 AND f.feedback_type = 'thumbs_down')
                         OR (f.feedback_type = 'rating' AND f.rating_value <= $7))))
  AND ($8::text IS NULL OR e.batch_id IS DISTINCT FROM $8)
  -- Only a ticket's newest enhancement counts: an older one was already superseded (by a
  -- later webhook or an earlier batch), redoing it would post a stale note.
  AND NOT EXISTS (SELECT 1 FROM enhancements n
                  WHERE n.tenant_id = e.tenant_id AND n.ticket_id = e.ticket_id
                    AND ($8::text IS NULL OR n.batch_id IS DISTINCT FROM $8)
                    AND (n.received_at, n.id) > (e.received_at, e.id))
ORDER BY e.received_at, e.id
LIMIT $9
"""


async def select_candidates(
    conn: asyncpg.Connection, filters: ReenhanceFilters, *, exclude_batch: str | None = None
) -> list[Candidate]:
    """Oldest first, so `limit` is stable across runs: new failures sort after it.

    `exclude_batch` hides that batch's own jobs, so a resumed run selects what the first run
    selected instead of the jobs it created. Runs inside the tenant's transaction (RLS)."""
    tickets = list(filters.ticket_ids) if filters.ticket_ids is not None else None
    rows = await conn.fetch(
        _SELECT,
        filters.tenant_id,
        filters.statuses,
        filters.since,
        filters.until,
        tickets,
        filters.thumbs_down,
        filters.max_rating,
        exclude_batch,
        filters.limit,
    )
    return [
        Candidate(
            r["id"],
            r["ticket_id"],
            r["status"],
            r["outcome"],
            r["received_at"],
            r["has_description"],
        )
        for r in rows
    ]


def dedupe_key(batch_id: str, original_id: uuid.UUID) -> str:
    return f"reenhance:{batch_id}:{original_id}"


async def batch_originals(conn: asyncpg.Connection, batch_id: str) -> set[uuid.UUID]:
    """Originals this batch has already created a job for (what a resumed run skips)."""
    rows = await conn.fetch(
        "SELECT supersedes FROM enhancements WHERE batch_id = $1 AND supersedes IS NOT NULL",
        batch_id,
    )
    return {r["supersedes"] for r in rows}


async def enqueue_batch(
    conn: asyncpg.Connection, tenant_id: str, batch_id: str, originals: Sequence[uuid.UUID]
) -> int:
    """One `queued` job per original, payload copied from it; returns how many were new.

    Each job gets its own trace root (a re-enhancement has no webhook to continue from), and
    one NOTIFY wakes the dispatcher for the whole wave."""
    if not originals:
        return 0
    rows = await conn.fetch(
        "SELECT id, ticket_id, payload, max_attempts FROM enhancements WHERE id = ANY($1::uuid[])",
        list(originals),
    )
    by_id = {r["id"]: r for r in rows}
    created = 0
    for original_id in originals:
        row = by_id.get(original_id)
        if row is None:
            continue
        attributes = {
            "tenant.id": tenant_id,
            "ticket.id": row["ticket_id"],
            "reenhance.batch_id": batch_id,
            "reenhance.supersedes": str(original_id),
        }
        with tracer().start_as_current_span("reenhance.enqueue", attributes=attributes) as span:
            queued = await jobs.enqueue(
                conn,
                tenant_id=tenant_id,
                ticket_id=row["ticket_id"],
                event=REENHANCE_EVENT,
                dedupe_key=dedupe_key(batch_id, original_id),
                payload=row["payload"],
                trace_context=current_carrier(),
                trace_id=trace_id_hex(span),
                priority=BATCH_PRIORITY,
                max_attempts=row["max_attempts"],
                supersedes=original_id,
                batch_id=batch_id,
                notify=False,
            )
            span.set_attribute("enhancement.id", str(queued.id))
        created += queued.created
    if created:
        await conn.execute("SELECT pg_notify($1, $2)", jobs.JOBS_CHANNEL, tenant_id)
    return created


@dataclass
class BatchProgress:
    """Where a batch stands. `pending` items are selected but not enqueued yet (the runner
    releases them in waves); `completed` counts notes written by the LLM."""

    total: int = 0
    pending: int = 0
    queued: int = 0
    running: int = 0
    completed: int = 0
    context_only: int = 0
    skipped: int = 0
    failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def done(self) -> int:
        return self.completed + self.context_only + self.skipped + self.failed

    @property
    def active(self) -> int:
        return self.queued + self.running

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.active == 0

    def counts(self) -> dict[str, int]:
        return {
            "total": self.total,
            "done": self.done,
            "completed": self.completed,
            "context_only": self.context_only,
            "skipped": self.skipped,
            "failed": self.failed,
            "running": self.running,
            "queued": self.queued,
            "pending": self.pending,
        }

    def log_line(self) -> str:
        """The line the Ray Job prints per step (Jobs view logs); the CLI parses it back."""
        return f"{LOG_PREFIX} progress " + " ".join(f"{k}={v}" for k, v in self.counts().items())


_PROGRESS_RE = re.compile(rf"^{re.escape(LOG_PREFIX)} progress ((?:\w+=\d+ ?)+)$")
_RESULT_PREFIX = f"{LOG_PREFIX} result "


def parse_progress_line(line: str) -> BatchProgress | None:
    match = _PROGRESS_RE.match(line.strip())
    if match is None:
        return None
    values = dict(part.split("=") for part in match.group(1).split())

    def count(name: str) -> int:
        return int(values.get(name, 0))

    return BatchProgress(
        total=count("total"),
        pending=count("pending"),
        queued=count("queued"),
        running=count("running"),
        completed=count("completed"),
        context_only=count("context_only"),
        skipped=count("skipped"),
        failed=count("failed"),
    )


def result_line(result: dict[str, Any]) -> str:
    return _RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str)


def parse_result_line(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith(_RESULT_PREFIX):
        return None
    try:
        value = json.loads(line[len(_RESULT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def batch_progress(
    conn: asyncpg.Connection, batch_id: str, *, total: int, pending: int
) -> BatchProgress:
    """Counts of the batch's jobs by state, read from the database (the only truth)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
                  count(*) FILTER (WHERE status = 'running') AS running,
                  count(*) FILTER (WHERE status = 'completed' AND outcome = 'llm') AS completed,
                  count(*) FILTER (WHERE status = 'completed'
                                   AND outcome = 'context_only') AS context_only,
                  count(*) FILTER (WHERE status = 'completed' AND outcome = 'skipped') AS skipped,
                  count(*) FILTER (WHERE status = 'failed') AS failed
           FROM enhancements WHERE batch_id = $1""",
        batch_id,
    )
    return BatchProgress(
        total=total,
        pending=pending,
        queued=row["queued"],
        running=row["running"],
        completed=row["completed"],
        context_only=row["context_only"],
        skipped=row["skipped"],
        failed=row["failed"],
    )


@dataclass(frozen=True)
class Estimate:
    """What a batch will cost and the least time the tenant's rate limits allow for it."""

    items: int
    llm_calls: int
    sdp_calls: int
    llm_rate_per_minute: int
    sdp_rate_per_minute: int
    minutes_at_least: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    candidates: Sequence[Candidate], settings: TenantSettings, edition: Edition
) -> Estimate:
    """Lower bound: a batch shares the tenant's buckets with live traffic and retries add more."""
    items = len(candidates)
    llm = items * LLM_CALLS_PER_ITEM
    sdp = items * SDP_CALLS_PER_ITEM + sum(not c.has_description for c in candidates)
    sdp_rate = settings.sdp_rate(edition)
    minutes = max(llm / settings.llm_rate_per_minute, sdp / sdp_rate)
    return Estimate(items, llm, sdp, settings.llm_rate_per_minute, sdp_rate, round(minutes, 2))
