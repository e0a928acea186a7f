"""What each tenant used in a period: enhancements by outcome, tickets, LLM attempts, tokens and
cost, per model. Behind ``GET /api/v1/usage`` and ``ai-agents usage``, so both say the same.

- Tokens and cost come from the usage ledger (every answered attempt, by when the provider
  answered): retries, answers we could not use and runs a re-enhancement superseded are billed,
  so they are counted.
- Enhancements are counted by when their webhook arrived, each run on its own (a re-enhanced
  ticket has two runs, both notes were written); ``tickets`` counts distinct tickets.
- Periods are half-open, ``[start, end)``, in UTC; a calendar month is ``month_period``.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import BaseModel, Field

from db.repositories.llm_usage import enhancement_outcomes, usage_by_model

MAX_PERIOD = timedelta(days=400)
CSV_COLUMNS = (
    "period_start",
    "period_end",
    "tenant_id",
    "tickets",
    "enhancements_llm",
    "enhancements_context_only",
    "enhancements_skipped",
    "enhancements_failed",
    "llm_attempts",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
)


class ModelUsage(BaseModel):
    model: str
    attempts: int = Field(description="answered LLM attempts, each billed")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class Enhancements(BaseModel):
    llm: int = Field(0, description="notes with the AI summary")
    context_only: int = Field(0, description="notes from the gathered context alone")
    skipped: int = Field(0, description="too thin to research: a short note asking for details")
    failed: int = 0
    unfinished: int = Field(0, description="still queued or running")


class TenantUsage(BaseModel):
    tenant_id: str
    tickets: int = Field(0, description="distinct tickets enhanced")
    enhancements: Enhancements = Field(default_factory=Enhancements)
    llm_attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    models: list[ModelUsage] = Field(default_factory=list)


class UsageReport(BaseModel):
    start: datetime = Field(description="from, inclusive (UTC)")
    end: datetime = Field(description="to, exclusive (UTC)")
    tenants: list[TenantUsage] = Field(description="one row per tenant")


class PeriodError(ValueError):
    """A period that is backwards, empty or too long."""


def month_period(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as ``[first day 00:00 UTC, first day of the next month)``."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 2000:
        raise PeriodError(f"not a month: {month!r} (want YYYY-MM, e.g. 2026-11)")
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def this_month(now: datetime | None = None) -> tuple[datetime, datetime]:
    """From the first of the current month (UTC) to now."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise PeriodError("'to' must be after 'from'")
    if end - start > MAX_PERIOD:
        raise PeriodError(f"a period may span at most {MAX_PERIOD.days} days")


async def usage_report(
    pool: asyncpg.Pool, start: datetime, end: datetime, *, tenant_id: str | None
) -> UsageReport:
    """One tenant's usage (``tenant_id``) or every tenant's, one row each."""
    check_period(start, end)
    rows = {
        r["tenant_id"]: TenantUsage(
            tenant_id=r["tenant_id"],
            tickets=r["tickets"],
            enhancements=Enhancements(
                llm=r["llm"],
                context_only=r["context_only"],
                skipped=r["skipped"],
                failed=r["failed"],
                unfinished=r["unfinished"],
            ),
        )
        for r in await enhancement_outcomes(pool, start, end, tenant_id)
    }
    for r in await usage_by_model(pool, start, end, tenant_id):
        row = rows.setdefault(r["tenant_id"], TenantUsage(tenant_id=r["tenant_id"]))
        model = ModelUsage(
            model=r["model"],
            attempts=r["attempts"],
            prompt_tokens=r["prompt_tokens"],
            completion_tokens=r["completion_tokens"],
            cost_usd=float(r["cost_usd"]),
        )
        row.models.append(model)
        row.llm_attempts += model.attempts
        row.prompt_tokens += model.prompt_tokens
        row.completion_tokens += model.completion_tokens
        row.cost_usd += model.cost_usd
    for row in rows.values():
        row.models.sort(key=lambda m: (-m.cost_usd, m.model))
        row.cost_usd = round(row.cost_usd, 10)
    return UsageReport(start=start, end=end, tenants=sorted(rows.values(), key=_by_id))


def _by_id(row: TenantUsage) -> str:
    return row.tenant_id


def report_csv(report: UsageReport) -> str:
    """One line per tenant, the columns of ``CSV_COLUMNS``: what a billing system imports (the
    per-model split is in the JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.tenants:
        writer.writerow(
            [
                report.start.isoformat(),
                report.end.isoformat(),
                row.tenant_id,
                row.tickets,
                row.enhancements.llm,
                row.enhancements.context_only,
                row.enhancements.skipped,
                row.enhancements.failed,
                row.llm_attempts,
                row.prompt_tokens,
                row.completion_tokens,
                row.prompt_tokens + row.completion_tokens,
                f"{row.cost_usd:.6f}",
            ]
        )
    return out.getvalue()
