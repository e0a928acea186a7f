"""What each tenant used in a period, for billing: its own with a tenant token, every tenant's
(one row each) with the admin token. The report itself is ``pipeline.llm.usage``, shared with
``ai-agents usage``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from pipeline.llm.usage import PeriodError, UsageReport, this_month, usage_report
from serve_app.deps import Pool, TenantOrAdmin
from serve_app.guards.input_rules import UtcDatetime
from serve_app.schemas import ErrorBody

router = APIRouter(prefix="/api/v1/usage", tags=["usage"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("", response_model=UsageReport, responses=_ERRORS)
async def get_usage(
    caller: TenantOrAdmin,
    pool: Pool,
    start: UtcDatetime | None = Query(
        None, alias="from", description="inclusive; default: the first of this month, 00:00 UTC"
    ),
    end: UtcDatetime | None = Query(
        None, alias="to", description="exclusive; default: now (at most 400 days after `from`)"
    ),
) -> UsageReport:
    """Enhancements by outcome (llm, context-only, skipped, failed), distinct tickets, LLM
    attempts, prompt and completion tokens and cost in USD, per model. Every attempt the provider
    answered is counted (retries, unusable answers and superseded runs are billed too)."""
    first, now = this_month()
    period = (_utc(start) if start else first, _utc(end) if end else now)
    try:
        return await usage_report(pool, *period, tenant_id=caller)
    except PeriodError as exc:
        raise HTTPException(
            422, [{"loc": ["query", "to"], "msg": str(exc), "type": "value_error"}]
        ) from None
