"""The audit trail: every write and every denied access. Written through a SECURITY DEFINER
function because a denied request may concern no tenant or a tenant that does not exist."""

from __future__ import annotations

from typing import Any

import asyncpg


async def write_audit(
    executor: asyncpg.Pool | asyncpg.Connection,
    *,
    tenant_id: str | None,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: dict[str, Any] | None = None,
) -> None:
    await executor.execute(
        "SELECT app_write_audit($1, $2, $3, $4, $5, $6)",
        tenant_id,
        actor,
        action,
        target,
        outcome,
        details or {},
    )


async def recent_audit(
    conn: asyncpg.Connection, *, action: str | None = None, limit: int = 100
) -> list[asyncpg.Record]:
    """Tenant-scoped read (RLS): only the current tenant's rows."""
    return await conn.fetch(
        """SELECT * FROM audit_log WHERE ($1::text IS NULL OR action = $1)
           ORDER BY created_at DESC LIMIT $2""",
        action,
        limit,
    )
