"""Writing import batches into a tenant's tables through the knowledge repository.

Batches, not single rows, share one tenant transaction: per-row transactions would make a
10,000-ticket import pay 10,000 commits, while one transaction for everything would lose all
progress when the source fails near the end. A committed batch survives an interrupted run,
and the upserts make the re-run that resumes it harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from db.pool import tenant_transaction
from db.repositories.tenants import fetch_tenant

Row = TypeVar("Row")
Upsert = Callable[[asyncpg.Connection, Row], Awaitable[bool]]


async def require_tenant(pool: asyncpg.Pool, tenant_id: str) -> None:
    """Fail with a readable error up front (``UnknownTenant``), not a foreign-key violation
    mid-import."""
    await fetch_tenant(pool, tenant_id)


async def write_batch(
    pool: asyncpg.Pool, tenant_id: str, rows: Sequence[Row], upsert: Upsert[Row]
) -> tuple[int, int]:
    """Upsert `rows` in one tenant transaction; returns (new, updated)."""
    if not rows:
        return 0, 0
    new = 0
    async with tenant_transaction(pool, tenant_id) as conn:
        for row in rows:
            new += bool(await upsert(conn, row))
    return new, len(rows) - new
