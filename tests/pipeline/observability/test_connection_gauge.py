"""The database-connection gauge samples a real asyncpg pool and survives a database that is
away."""

from __future__ import annotations

import asyncio

from core import metric_catalogue as mc
from pipeline.observability.connection_gauge import record_pool_usage, start_connection_gauge
from pipeline.observability.metrics import InMemoryMetrics


def _gauge(metrics: InMemoryMetrics, component: str, state: str) -> float | None:
    key = (mc.DB_POOL_CONNECTIONS.name, (("component", component), ("state", state)))
    return metrics.gauges.get(key)


async def test_in_use_and_idle_follow_the_pool(pool) -> None:
    metrics = InMemoryMetrics()
    async with pool.acquire():
        record_pool_usage(metrics, "unit", pool)
        busy = _gauge(metrics, "unit", "in_use")
    record_pool_usage(metrics, "unit", pool)
    assert busy is not None and busy >= 1
    assert _gauge(metrics, "unit", "in_use") == busy - 1
    assert _gauge(metrics, "unit", "idle") >= 1


async def test_sampler_keeps_running_when_the_database_is_away(pool) -> None:
    metrics = InMemoryMetrics()
    calls = 0

    async def flaky_pool():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("connection refused")
        return pool

    task = start_connection_gauge(metrics, "flaky", flaky_pool, every_s=0.01)
    assert task is not None
    for _ in range(200):
        if _gauge(metrics, "flaky", "idle") is not None:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert calls >= 2 and _gauge(metrics, "flaky", "idle") is not None


def test_no_running_loop_means_no_sampler(pool) -> None:
    assert start_connection_gauge(InMemoryMetrics(), "sync", lambda: pool) is None  # type: ignore[arg-type,return-value]
