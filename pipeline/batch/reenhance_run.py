"""Runs one re-enhancement batch: plan it, release it in waves, wait for it, report.

The batch never talks to the pools. It only writes `queued` jobs and watches them, releasing
at most `max_in_flight` at a time: live jobs of the tenant already win every claim (higher
priority), and the wave cap also keeps the batch from filling the tenant's in-flight slots and
its share of the LLM/SDP token buckets, so a webhook arriving mid-batch starts at once instead
of queueing behind hundreds of batch jobs. Stopping the runner (Ray `stop_job`, Ctrl-C) leaves
at most one wave to finish; running it again with the same batch id continues where it was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from db.repositories.tenants import UnknownTenant, fetch_tenant
from pipeline.batch.reenhance_plan import (
    BatchProgress,
    Candidate,
    Estimate,
    ReenhanceError,
    ReenhanceFilters,
    batch_originals,
    batch_progress,
    enqueue_batch,
    estimate,
    select_candidates,
)
from pipeline.observability.metrics import Metrics
from pipeline.tenancy.config import TenantSettings

ProgressCallback = Callable[[BatchProgress], None]
SAMPLE_TICKETS = 20
_OUTCOMES = ("completed", "context_only", "skipped", "failed")


@dataclass(frozen=True)
class BatchOptions:
    max_in_flight: int = 4
    poll_s: float = 1.0
    heartbeat_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ReenhanceError("max in flight must be at least 1")
        if self.poll_s <= 0:
            raise ReenhanceError("poll interval must be positive")


@dataclass
class BatchPlan:
    """The selection for one batch id: what it already holds and what is still to enqueue."""

    filters: ReenhanceFilters
    batch_id: str
    already: int
    pending: list[Candidate]
    estimate: Estimate

    @property
    def total(self) -> int:
        return self.already + len(self.pending)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.filters.tenant_id,
            "submission_id": self.batch_id,
            "filters": self.filters.describe(),
            "candidates": self.total,
            "already_enqueued": self.already,
            "to_enqueue": len(self.pending),
            "estimate": self.estimate.to_dict(),
            "sample_ticket_ids": [c.ticket_id for c in self.pending[:SAMPLE_TICKETS]],
        }


async def plan_batch(pool: asyncpg.Pool, filters: ReenhanceFilters, batch_id: str) -> BatchPlan:
    """Select candidates (the batch's own jobs excluded, so a re-run sees the same set)."""
    if not batch_id:
        raise ReenhanceError("a submission id is required")
    try:
        tenant = await fetch_tenant(pool, filters.tenant_id)
    except UnknownTenant:
        raise ReenhanceError(f"unknown tenant {filters.tenant_id!r}") from None
    if tenant["status"] != "active":
        raise ReenhanceError(f"tenant {filters.tenant_id!r} is {tenant['status']}")
    async with tenant_transaction(pool, filters.tenant_id) as conn:
        already = await batch_originals(conn, batch_id)
        candidates = await select_candidates(conn, filters, exclude_batch=batch_id)
    pending = [c for c in candidates if c.enhancement_id not in already]
    cost = estimate(pending, TenantSettings(**tenant["settings"]), tenant["sdp_edition"])
    return BatchPlan(filters, batch_id, len(already), pending, cost)


class _OutcomeCounter:
    """Turns successive progress readings into counter increments. The first reading is the
    baseline, so a resumed run does not count again what an earlier run already counted."""

    def __init__(self, metrics: Metrics | None, tenant_id: str) -> None:
        self._metrics = metrics
        self._tenant = tenant_id
        self._seen: dict[str, int] | None = None

    def enqueued(self, count: int) -> None:
        if self._metrics is not None and count:
            self._metrics.inc(
                mc.REENHANCE_ITEMS, {"tenant": self._tenant, "outcome": "enqueued"}, float(count)
            )

    def update(self, progress: BatchProgress) -> None:
        now = {k: getattr(progress, k) for k in _OUTCOMES}
        if self._seen is not None and self._metrics is not None:
            for outcome, value in now.items():
                delta = value - self._seen[outcome]
                if delta > 0:
                    self._metrics.inc(
                        mc.REENHANCE_ITEMS,
                        {"tenant": self._tenant, "outcome": outcome},
                        float(delta),
                    )
        self._seen = now


async def run_batch(
    pool: asyncpg.Pool,
    plan: BatchPlan,
    *,
    options: BatchOptions,
    on_progress: ProgressCallback,
    metrics: Metrics | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> BatchProgress:
    """Release the plan in waves and return once every item is completed or failed."""
    tenant_id, batch_id = plan.filters.tenant_id, plan.batch_id
    pending = list(plan.pending)
    counter = _OutcomeCounter(metrics, tenant_id)
    last: BatchProgress | None = None
    last_report = 0.0
    while True:
        async with tenant_transaction(pool, tenant_id) as conn:
            progress = await batch_progress(conn, batch_id, total=plan.total, pending=len(pending))
            counter.update(progress)
            room = options.max_in_flight - progress.active
            if room > 0 and pending:
                wave, pending = pending[:room], pending[room:]
                counter.enqueued(
                    await enqueue_batch(conn, tenant_id, batch_id, [c.enhancement_id for c in wave])
                )
                progress = await batch_progress(
                    conn, batch_id, total=plan.total, pending=len(pending)
                )
        now = time.monotonic()
        if progress != last or now - last_report >= options.heartbeat_s:
            on_progress(progress)
            last, last_report = progress, now
        if progress.finished:
            return progress
        await sleep(options.poll_s)
