"""The database-connection gauge: connections of an asyncpg pool in use and idle, per component.

A pool that stays at its maximum with work waiting is exhausted (the runbook
docs/runbooks/database-connection-issues.md); the gauge shows it before requests start timing
out. Sampled on a timer rather than
on acquire/release so the hot path pays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from core import metric_catalogue as mc
from db.pool import pool_usage
from pipeline.observability.metrics import Metrics

log = logging.getLogger(__name__)

PoolGetter = Callable[[], Awaitable[asyncpg.Pool]]


def record_pool_usage(metrics: Metrics, component: str, pool: asyncpg.Pool) -> None:
    in_use, idle = pool_usage(pool)
    metrics.set(mc.DB_POOL_CONNECTIONS, in_use, {"component": component, "state": "in_use"})
    metrics.set(mc.DB_POOL_CONNECTIONS, idle, {"component": component, "state": "idle"})


async def report_connection_usage(
    metrics: Metrics, component: str, get_pool: PoolGetter, every_s: float = 5.0
) -> None:
    """Runs until cancelled; a database that is away skips samples instead of ending the loop."""
    while True:
        try:
            record_pool_usage(metrics, component, await get_pool())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the gauge must never take its replica down
            log.debug("connection gauge sample skipped: %s", type(exc).__name__)
        await asyncio.sleep(every_s)


def start_connection_gauge(
    metrics: Metrics, component: str, get_pool: PoolGetter, every_s: float = 5.0
) -> asyncio.Task[None] | None:
    """Start the sampler on the running loop (Serve runs constructors there); None without one."""
    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_running_loop()
        sampler = report_connection_usage(metrics, component, get_pool, every_s)
        return loop.create_task(sampler, name=f"connection-gauge-{component}")
    return None
