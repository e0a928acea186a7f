"""Waiting for the service's work to finish, the one polling loop every local run uses.

Jobs are read from the ``enhancements`` table: as the owner role (all tenants at once, what a
benchmark or a test's clean-up needs) or through the caller's own probe (the demo reads its
tenants' rows with the service role, the integration tests through the HTTP API).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from local_stack.database import Database

T = TypeVar("T")

TERMINAL_STATUSES = ("completed", "failed")
JOB_COLUMNS = """id::text AS id, tenant_id, ticket_id, status, outcome, attempts, error,
    extract(epoch FROM received_at) AS received, extract(epoch FROM finished_at) AS finished,
    extract(epoch FROM started_at) AS started, stage_timings, note_id"""


async def poll_until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    interval_s: float,
) -> tuple[T, bool]:
    """Call ``probe`` every ``interval_s`` until ``done`` says its answer is final or
    ``timeout_s`` has passed; the last answer, and whether it was final. The caller decides
    whether a timeout is an error (a test) or a result to report (the demo, a benchmark)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value, True
        if time.monotonic() > deadline:
            return value, False
        await asyncio.sleep(interval_s)


async def fetch_jobs(db: Database, ids: list[str]) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        rows = await conn.fetch(
            f"SELECT {JOB_COLUMNS} FROM enhancements WHERE id = ANY($1::uuid[])", ids
        )
        out = []
        for r in rows:
            row = dict(r)
            if isinstance(row.get("stage_timings"), str):
                row["stage_timings"] = json.loads(row["stage_timings"])
            out.append(row)
        return out
    finally:
        await conn.close()


async def wait_terminal(
    db: Database, ids: list[str], timeout_s: float, on_progress: Any = None
) -> list[dict[str, Any]]:
    """Poll until every job is completed/failed (or the timeout); returns the rows."""
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)

    async def finished() -> int:
        done: int = await conn.fetchval(
            "SELECT count(*) FROM enhancements WHERE id = ANY($1::uuid[]) "
            "AND status = ANY($2::text[])",
            ids,
            list(TERMINAL_STATUSES),
        )
        if on_progress is not None:
            await on_progress(done)
        return done

    try:
        await poll_until(
            finished, lambda done: done >= len(ids), timeout_s=timeout_s, interval_s=0.25
        )
    finally:
        await conn.close()
    return await fetch_jobs(db, ids)


async def wait_until_idle(owner_conn: Any, timeout_s: float = 120.0) -> None:
    """Wait until no job anywhere is queued or running (so a test's faults hit only its own
    jobs); AssertionError if some still are after ``timeout_s``."""

    async def busy() -> int:
        count: int = await owner_conn.fetchval(
            "SELECT count(*) FROM enhancements WHERE status IN ('queued', 'running')"
        )
        return count

    left, idle = await poll_until(busy, lambda n: n == 0, timeout_s=timeout_s, interval_s=0.25)
    if not idle:
        raise AssertionError(f"{left} job(s) still queued/running")
