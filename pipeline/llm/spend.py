"""What a tenant spends on the LLM: every answered attempt into the usage ledger, and the
monthly budgets checked before a job asks the LLM.

- **The ledger** (``record``): each answered attempt with its model, tokens and cost, as the
  provider reported them (OpenRouter's ``usage.cost`` is in credits, i.e. USD). Retries, answers
  we could not use and runs a re-enhancement later superseded are all billed, so all are
  recorded, right after the synthesis (a job that fails at write-back and runs again has paid
  twice and is counted twice).
- **Budgets** (``paused``): a tenant's ``monthly_budget_usd`` and ``monthly_budget_tokens``
  and the deployment's ``AI_AGENTS_LLM_MONTHLY_BUDGET_USD``, per calendar month in UTC. One read
  per job (``app_llm_month_spend``: the monthly sums, a few rows), none when no budget is set.
  Spent (at or past the budget): the job does not ask the LLM and its note is context-only,
  saying the AI summary is paused for the budget; other tenants are untouched (unless the
  deployment's budget is the one spent).
- **Overshoot**: every Enhancer replica reads the same sums in PostgreSQL, so the check is
  right however many run; what it cannot see is spend still in flight. A budget is exceeded by
  at most the jobs that passed the check before the crossing one recorded its usage, i.e. the
  tenant's jobs in flight at that moment (the deployment's: every job in flight), each costing at
  most ``AI_AGENTS_LLM_MAX_ATTEMPTS`` answered attempts of a prompt (~5k tokens, bounded by the
  prompt budget) plus ``max_tokens`` (1,500) each.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import asyncpg

from db.pool import tenant_transaction
from db.repositories.llm_usage import month_spend, record_attempts
from pipeline.models import AttemptUsage
from pipeline.tenancy.config import TenantSettings

log = logging.getLogger(__name__)


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class LLMSpend:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        deployment_budget_usd: float | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self.deployment_budget_usd = deployment_budget_usd
        self._now = now

    async def paused(self, tenant_id: str, settings: TenantSettings) -> str | None:
        """Why this tenant's next job must not ask the LLM (a budget is spent), else None."""
        usd, tokens = settings.monthly_budget_usd, settings.monthly_budget_tokens
        deployment = self.deployment_budget_usd
        if usd is None and tokens is None and deployment is None:
            return None
        month = month_of(self._now())
        try:
            cost, used_tokens, total = await month_spend(self._pool, tenant_id, month)
        except (asyncpg.PostgresError, OSError) as exc:
            # The job itself needs the database next; do not turn a blip into paused notes.
            log.warning("budget check failed, not pausing: %s", type(exc).__name__)
            return None
        resumes = f"resumes on {next_month(month).isoformat()} (UTC) or when the budget is raised"
        if usd is not None and cost >= usd:
            return (
                f"AI summary paused: this month's LLM budget for this tenant, {usd:.2f} USD, is "
                f"spent ({cost:.2f} USD so far); {resumes}"
            )
        if tokens is not None and used_tokens >= tokens:
            return (
                f"AI summary paused: this month's LLM budget for this tenant, {tokens:,} tokens, "
                f"is spent ({used_tokens:,} so far); {resumes}"
            )
        if deployment is not None and total >= deployment:
            return (
                f"AI summary paused: this month's LLM budget for the whole service, "
                f"{deployment:.2f} USD, is spent ({total:.2f} USD so far); {resumes}"
            )
        return None

    async def record(
        self, tenant_id: str, enhancement_id: str | None, usage: Sequence[AttemptUsage]
    ) -> None:
        """Into the ledger; a failure is logged with the figures (never fails the job)."""
        if not usage:
            return
        ident = uuid.UUID(enhancement_id) if enhancement_id else None
        try:
            async with tenant_transaction(self._pool, tenant_id) as conn:
                await record_attempts(conn, tenant_id, ident, usage)
        except (asyncpg.PostgresError, OSError) as exc:
            log.error(
                "LLM usage not recorded (%s): %d attempt(s), %d tokens, %.6f USD",
                type(exc).__name__,
                len(usage),
                sum(u.prompt_tokens + u.completion_tokens for u in usage),
                sum(u.cost_usd for u in usage),
                extra={"tenant_id": tenant_id, "enhancement_id": enhancement_id},
            )
