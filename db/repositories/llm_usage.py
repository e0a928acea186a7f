"""The LLM usage ledger (migration 0011): one row per answered attempt, and its monthly sums.

``record_attempts`` runs inside the tenant's transaction (RLS checks every row it writes) and
writes the ledger rows and their monthly sums in one statement; the readers across tenants
(the budget check, /metrics, the usage report) are narrow SECURITY DEFINER functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

import asyncpg

from db.pool import system_fetch


class Attempt(Protocol):
    """What one answered attempt cost (``pipeline.models.AttemptUsage``)."""

    @property
    def model(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float: ...


async def record_attempts(
    conn: asyncpg.Connection,
    tenant_id: str,
    enhancement_id: uuid.UUID | None,
    attempts: Sequence[Attempt],
) -> None:
    if not attempts:
        return
    await conn.execute(
        """WITH ins AS (
               INSERT INTO llm_usage (tenant_id, enhancement_id, model, outcome, prompt_tokens,
                                      completion_tokens, cost_usd)
               SELECT $1, $2, u.model, u.outcome, u.prompt_tokens, u.completion_tokens, u.cost
               FROM unnest($3::text[], $4::text[], $5::integer[], $6::integer[],
                           $7::numeric[]) AS u(model, outcome, prompt_tokens,
                                               completion_tokens, cost)
               RETURNING tenant_id, at, model, prompt_tokens, completion_tokens, cost_usd
           )
           INSERT INTO llm_usage_monthly AS m (tenant_id, month, model, attempts, prompt_tokens,
                                               completion_tokens, cost_usd)
           SELECT tenant_id, date_trunc('month', at AT TIME ZONE 'UTC')::date, model, count(*),
                  sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)
           FROM ins GROUP BY 1, 2, 3
           ON CONFLICT (tenant_id, month, model) DO UPDATE SET
               attempts = m.attempts + excluded.attempts,
               prompt_tokens = m.prompt_tokens + excluded.prompt_tokens,
               completion_tokens = m.completion_tokens + excluded.completion_tokens,
               cost_usd = m.cost_usd + excluded.cost_usd""",
        tenant_id,
        enhancement_id,
        [a.model[:200] for a in attempts],
        [a.outcome[:40] for a in attempts],
        [a.prompt_tokens for a in attempts],
        [a.completion_tokens for a in attempts],
        [Decimal(str(a.cost_usd)) for a in attempts],
    )


async def month_spend(pool: asyncpg.Pool, tenant_id: str, month: date) -> tuple[float, int, float]:
    """(the tenant's cost, its tokens, every tenant's cost) in the calendar month."""
    rows = await system_fetch(pool, "SELECT * FROM app_llm_month_spend($1, $2)", tenant_id, month)
    row = rows[0]
    return float(row["tenant_cost_usd"]), int(row["tenant_tokens"]), float(row["total_cost_usd"])


async def spend_stats(pool: asyncpg.Pool, month: date) -> list[asyncpg.Record]:
    return await system_fetch(pool, "SELECT * FROM app_llm_spend_stats($1)", month)


async def usage_by_model(
    pool: asyncpg.Pool, start: datetime, end: datetime, tenant_id: str | None
) -> list[asyncpg.Record]:
    return await system_fetch(
        pool, "SELECT * FROM app_llm_usage($1, $2, $3)", start, end, tenant_id
    )


async def enhancement_outcomes(
    pool: asyncpg.Pool, start: datetime, end: datetime, tenant_id: str | None
) -> list[asyncpg.Record]:
    return await system_fetch(
        pool, "SELECT * FROM app_enhancement_outcomes($1, $2, $3)", start, end, tenant_id
    )
