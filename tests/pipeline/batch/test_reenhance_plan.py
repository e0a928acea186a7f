"""Which enhancements a re-enhancement batch picks, and the jobs it writes, against the real
session PostgreSQL as the restricted service role (RLS on)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from db.repositories.feedback import insert_feedback
from pipeline.batch.reenhance_plan import (
    BATCH_PRIORITY,
    BatchProgress,
    ReenhanceError,
    ReenhanceFilters,
    batch_progress,
    dedupe_key,
    enqueue_batch,
    parse_progress_line,
    parse_result_line,
    result_line,
    select_candidates,
)
from pipeline.batch.reenhance_run import BatchOptions, plan_batch, run_batch
from pipeline.observability.metrics import InMemoryMetrics
from pipeline.tenancy.admin import TenantUpdate

NOW = datetime.now(UTC)


async def add(
    pool: asyncpg.Pool,
    tenant_id: str,
    ticket_id: str,
    *,
    status: str = "failed",
    outcome: str | None = None,
    age_h: float = 1.0,
    has_description: bool = True,
) -> uuid.UUID:
    payload = {
        "ticket": {
            "ticket_id": ticket_id,
            "subject": f"Ticket {ticket_id}",
            "description": "Outlook cannot reach the Exchange server",
        },
        "event": "created",
        "has_description": has_description,
    }
    async with tenant_transaction(pool, tenant_id) as conn:
        queued = await jobs.enqueue(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            event="created",
            dedupe_key=uuid.uuid4().hex,
            payload=payload,
            trace_context=None,
            trace_id=None,
            max_attempts=3,
            notify=False,
        )
        await conn.execute(
            """UPDATE enhancements SET status = $2::text, outcome = $3,
                   received_at = $4::timestamptz,
                   finished_at = CASE WHEN $2 IN ('completed', 'failed') THEN $4 END
               WHERE id = $1""",
            queued.id,
            status,
            outcome,
            NOW - timedelta(hours=age_h),
        )
    return queued.id


async def feedback(
    pool: asyncpg.Pool,
    tenant_id: str,
    enhancement_id: uuid.UUID,
    kind: str,
    rating: int | None = None,
) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        ticket = await conn.fetchval(
            "SELECT ticket_id FROM enhancements WHERE id = $1", enhancement_id
        )
        await insert_feedback(
            conn,
            tenant_id=tenant_id,
            enhancement_id=enhancement_id,
            ticket_id=ticket,
            feedback_type=kind,
            rating_value=rating,
            technician_email=None,
            comment=None,
        )


async def select(pool: asyncpg.Pool, exclude_batch: str | None = None, **filters: Any) -> list[str]:
    chosen = ReenhanceFilters(**filters)
    async with tenant_transaction(pool, chosen.tenant_id) as conn:
        found = await select_candidates(conn, chosen, exclude_batch=exclude_batch)
    return [c.ticket_id for c in found]


@pytest.fixture
async def tenant(make_tenant) -> str:
    return (await make_tenant("reen")).tenant_id


@pytest.fixture
async def mixed(pool, tenant) -> dict[str, uuid.UUID]:
    """One enhancement per ticket in every state the filters distinguish."""
    return {
        "f1": await add(pool, tenant, "f1", age_h=50),
        "f2": await add(pool, tenant, "f2", age_h=30),
        "ctx": await add(pool, tenant, "ctx", status="completed", outcome="context_only"),
        "ok": await add(pool, tenant, "ok", status="completed", outcome="llm"),
        "skip": await add(pool, tenant, "skip", status="completed", outcome="skipped"),
        "queued": await add(pool, tenant, "queued", status="queued"),
        "running": await add(pool, tenant, "running", status="running"),
    }


async def test_failed_only_by_default_oldest_first(pool, tenant, mixed) -> None:
    assert await select(pool, tenant_id=tenant) == ["f1", "f2"]


async def test_context_only(pool, tenant, mixed) -> None:
    assert await select(pool, tenant_id=tenant, statuses="context_only") == ["ctx"]


async def test_any_status_never_picks_jobs_still_in_flight(pool, tenant, mixed) -> None:
    picked = await select(pool, tenant_id=tenant, statuses="any")
    assert sorted(picked) == ["ctx", "f1", "f2", "ok", "skip"]


async def test_thumbs_down_and_low_ratings(pool, tenant, mixed) -> None:
    await feedback(pool, tenant, mixed["ok"], "thumbs_down")
    await feedback(pool, tenant, mixed["ctx"], "rating", 2)
    await feedback(pool, tenant, mixed["skip"], "rating", 3)
    await feedback(pool, tenant, mixed["f1"], "thumbs_up")
    assert await select(pool, tenant_id=tenant, statuses="any", thumbs_down=True) == ["ok"]
    assert await select(pool, tenant_id=tenant, statuses="any", max_rating=2) == ["ctx"]
    assert sorted(await select(pool, tenant_id=tenant, statuses="any", max_rating=3)) == [
        "ctx",
        "skip",
    ]
    # Both feedback criteria: either kind of dislike.
    assert sorted(
        await select(pool, tenant_id=tenant, statuses="any", thumbs_down=True, max_rating=2)
    ) == ["ctx", "ok"]
    # Other criteria still apply on top.
    assert await select(pool, tenant_id=tenant, statuses="failed", thumbs_down=True) == []


async def test_ticket_list_date_range_and_limit(pool, tenant, mixed) -> None:
    assert sorted(
        await select(
            pool, tenant_id=tenant, statuses="any", ticket_ids=["ok", "f2", "queued", "nope"]
        )
    ) == ["f2", "ok"]
    # since inclusive, until exclusive, on when the enhancement was received
    assert await select(pool, tenant_id=tenant, since=NOW - timedelta(hours=40)) == ["f2"]
    assert await select(pool, tenant_id=tenant, until=NOW - timedelta(hours=40)) == ["f1"]
    assert await select(
        pool, tenant_id=tenant, since=NOW - timedelta(hours=60), until=NOW - timedelta(hours=20)
    ) == ["f1", "f2"]
    assert await select(pool, tenant_id=tenant, statuses="any", limit=2) == ["f1", "f2"]


async def test_only_a_tickets_newest_enhancement_counts(pool, tenant) -> None:
    await add(pool, tenant, "redone", age_h=10)  # failed, then a later webhook succeeded
    await add(pool, tenant, "redone", status="completed", outcome="llm", age_h=5)
    await add(pool, tenant, "regressed", status="completed", outcome="llm", age_h=10)
    await add(pool, tenant, "regressed", age_h=5)
    assert await select(pool, tenant_id=tenant) == ["regressed"]


async def test_another_tenants_rows_are_invisible(pool, tenant, mixed, make_tenant) -> None:
    other = (await make_tenant("reen-other")).tenant_id
    assert await select(pool, tenant_id=other, statuses="any") == []
    # Even naming the other tenant's tickets explicitly.
    assert await select(pool, tenant_id=other, statuses="any", ticket_ids=["f1", "ok"]) == []


async def test_enqueue_batch_copies_the_job_and_is_idempotent(pool, tenant, mixed) -> None:
    originals = [mixed["f1"], mixed["f2"]]
    async with tenant_transaction(pool, tenant) as conn:
        assert await enqueue_batch(conn, tenant, "b1", originals) == 2
        assert await enqueue_batch(conn, tenant, "b1", originals) == 0
        rows = await conn.fetch(
            "SELECT e.*, o.payload AS original_payload FROM enhancements e "
            "JOIN enhancements o ON o.id = e.supersedes WHERE e.batch_id = 'b1' "
            "ORDER BY e.ticket_id"
        )
    assert [(r["ticket_id"], r["supersedes"]) for r in rows] == list(
        zip(["f1", "f2"], originals, strict=True)
    )
    for row in rows:
        assert row["status"] == "queued" and row["priority"] == BATCH_PRIORITY
        assert row["event"] == "reenhance" and row["max_attempts"] == 3
        assert row["dedupe_key"] == dedupe_key("b1", row["supersedes"])
        assert row["payload"] == row["original_payload"]
    # The batch's own jobs are now each ticket's newest; a resumed run looks past them.
    assert await select(pool, tenant_id=tenant) == []
    assert await select(pool, exclude_batch="b1", tenant_id=tenant) == ["f1", "f2"]
    async with tenant_transaction(pool, tenant) as conn:
        progress = await batch_progress(conn, "b1", total=2, pending=0)
    assert (progress.queued, progress.done, progress.finished) == (2, 0, False)


async def test_plan_estimates_calls_and_time_at_the_tenants_rates(
    pool, tenant, tenant_admin
) -> None:
    for i in range(30):
        await add(pool, tenant, f"p{i}", has_description=i >= 10, age_h=100 - i)
    await tenant_admin.update(
        tenant, TenantUpdate(settings={"llm_rate_per_minute": 10}), actor="test"
    )
    plan = await plan_batch(pool, ReenhanceFilters(tenant_id=tenant), "dry")
    cost = plan.estimate
    assert (plan.total, plan.already, len(plan.pending)) == (30, 0, 30)
    assert (cost.llm_calls, cost.sdp_calls) == (30, 70)  # 2 per item + 10 ticket fetches
    assert cost.minutes_at_least == 3.0  # 30 LLM calls at 10/min; SDP at 120/min is faster
    described = plan.to_dict()
    assert described["candidates"] == 30 and described["sample_ticket_ids"][0] == "p0"
    async with tenant_transaction(pool, tenant) as conn:
        assert await conn.fetchval("SELECT count(*) FROM enhancements WHERE batch_id = 'dry'") == 0


async def test_plan_refuses_unknown_and_disabled_tenants(pool, tenant, tenant_admin) -> None:
    with pytest.raises(ReenhanceError, match="^unknown tenant 'no-such-tenant'$"):
        await plan_batch(pool, ReenhanceFilters(tenant_id="no-such-tenant"), "x")
    await tenant_admin.disable(tenant, actor="test")
    with pytest.raises(ReenhanceError, match="disabled"):
        await plan_batch(pool, ReenhanceFilters(tenant_id=tenant), "x")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"tenant_id": ""}, "tenant"),
        ({"statuses": "broken"}, "status"),
        ({"max_rating": 6}, "rating"),
        ({"limit": 0}, "limit"),
        ({"ticket_ids": []}, "empty"),
        ({"since": NOW, "until": NOW - timedelta(days=1)}, "before"),
    ],
)
def test_bad_filters_are_refused(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ReenhanceError, match=message):
        ReenhanceFilters(**{"tenant_id": "t-1", **bad})


class _FakeService:
    """Stands in for dispatcher + pools: each tick finishes every released job (the first one
    failed), and records how many batch jobs were queued at once."""

    def __init__(self, pool: asyncpg.Pool, tenant_id: str) -> None:
        self.pool, self.tenant_id, self.peak, self.ticks = pool, tenant_id, 0, 0

    async def __call__(self, _seconds: float) -> None:
        self.ticks += 1
        async with tenant_transaction(self.pool, self.tenant_id) as conn:
            active = await conn.fetchval(
                "SELECT count(*) FROM enhancements WHERE batch_id = 'run' AND status = 'queued'"
            )
            self.peak = max(self.peak, active)
            await conn.execute(
                """UPDATE enhancements SET finished_at = now(),
                       status = CASE WHEN ticket_id = 'r0' THEN 'failed' ELSE 'completed' END,
                       outcome = CASE WHEN ticket_id = 'r0' THEN NULL ELSE 'llm' END
                   WHERE batch_id = 'run' AND status = 'queued'"""
            )


async def test_run_releases_waves_and_resumes_without_duplicates(pool, tenant) -> None:
    for i in range(7):
        await add(pool, tenant, f"r{i}", age_h=10 - i)
    filters = ReenhanceFilters(tenant_id=tenant)
    service, metrics, seen = _FakeService(pool, tenant), InMemoryMetrics(), []
    plan = await plan_batch(pool, filters, "run")
    plan.pending = plan.pending[:3]  # as if the first run was stopped after three
    await run_batch(
        pool,
        plan,
        options=BatchOptions(max_in_flight=2, poll_s=0.01),
        on_progress=seen.append,
        metrics=metrics,
        sleep=service,
    )
    resumed = await plan_batch(pool, filters, "run")
    assert (resumed.total, resumed.already, len(resumed.pending)) == (7, 3, 4)
    final = await run_batch(
        pool,
        resumed,
        options=BatchOptions(max_in_flight=2, poll_s=0.01),
        on_progress=seen.append,
        metrics=metrics,
        sleep=service,
    )
    assert final.counts() == {
        "total": 7,
        "done": 7,
        "completed": 6,
        "context_only": 0,
        "skipped": 0,
        "failed": 1,
        "running": 0,
        "queued": 0,
        "pending": 0,
    }
    assert service.peak == 2  # never more than one wave released at a time
    assert seen[0].pending > 0 and seen[-1].finished
    async with tenant_transaction(pool, tenant) as conn:
        per_original = await conn.fetch(
            "SELECT supersedes, count(*) FROM enhancements WHERE batch_id = 'run' "
            "GROUP BY supersedes"
        )
    assert len(per_original) == 7 and {r["count"] for r in per_original} == {1}

    def counted(outcome: str) -> float:
        key = (mc.REENHANCE_ITEMS.name, (("outcome", outcome), ("tenant", tenant)))
        return metrics.counters.get(key, 0)

    assert (counted("enqueued"), counted("completed"), counted("failed")) == (7, 6, 1)


def test_progress_and_result_lines_round_trip() -> None:
    progress = BatchProgress(total=9, pending=2, queued=1, running=2, completed=3, failed=1)
    assert parse_progress_line(progress.log_line()) == progress
    assert parse_progress_line("reenhance: batch x for tenant y") is None
    assert parse_result_line(result_line({"total": 9})) == {"total": 9}
    assert parse_result_line("reenhance: result {broken") is None
