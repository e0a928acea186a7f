"""Gauges computed from PostgreSQL at scrape time, served on the ingress' /metrics.

Queue depth lives in the database, so it is read there: the answer is the same whichever
ingress replica is scraped and however many Enhancer replicas exist.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from core import metric_catalogue as mc
from db.pool import system_fetch
from db.repositories.retention import retention_stats

MIN_CHECKED_FOR_HIT_RATIO = 5


async def render_db_metrics(pool: asyncpg.Pool | None) -> bytes:
    registry = CollectorRegistry()

    def gauge(spec: mc.MetricSpec) -> Gauge:
        return Gauge(spec.name, spec.description, spec.labels, registry=registry)

    up = gauge(mc.DATABASE_UP)
    if pool is None:
        up.set(0)
        return generate_latest(registry)
    try:
        queue = await system_fetch(pool, "SELECT * FROM app_queue_stats()")
        feedback = await system_fetch(pool, "SELECT * FROM app_feedback_stats(7)")
        suggestions = await system_fetch(pool, "SELECT * FROM app_suggestion_stats(30)")
        retention = await retention_stats(pool)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        up.set(0)
        return generate_latest(registry)
    up.set(1)
    depth, oldest, running = (
        gauge(mc.QUEUE_DEPTH),
        gauge(mc.OLDEST_QUEUED_AGE),
        gauge(mc.JOBS_RUNNING),
    )
    for row in queue:
        depth.labels(row["tenant_id"]).set(row["queued"])
        oldest.labels(row["tenant_id"]).set(row["oldest_queued_age_s"])
        running.labels(row["tenant_id"]).set(row["running"])
    average, positive = gauge(mc.FEEDBACK_AVERAGE), gauge(mc.FEEDBACK_POSITIVE)
    for row in feedback:
        if row["average_rating"] is not None:
            average.labels(row["tenant_id"]).set(row["average_rating"])
        positive.labels(row["tenant_id"]).set(row["positive_ratio"])
    hit_ratio = gauge(mc.SUGGESTION_HIT_RATIO)
    for row in suggestions:
        if row["checked"] >= MIN_CHECKED_FOR_HIT_RATIO:  # a ratio of two tickets is noise
            hit_ratio.labels(row["tenant_id"]).set(row["hit_ratio"])
    registry.register(_PurgedCounter(retention))
    oldest = gauge(mc.OLDEST_ROW_AGE)
    now = datetime.now(UTC)
    for row in retention:
        age = (now - row["oldest_at"]).total_seconds() if row["oldest_at"] else 0.0
        oldest.labels(row["table_name"]).set(max(0.0, age))
    return generate_latest(registry)


class _PurgedCounter(Collector):
    """The retention purge's running total per table, as a counter (kept in PostgreSQL)."""

    def __init__(self, rows: list[asyncpg.Record]) -> None:
        self._rows = rows

    def collect(self) -> list[CounterMetricFamily]:
        spec = mc.RETENTION_PURGED
        family = CounterMetricFamily(spec.name, spec.description, labels=spec.labels)
        for row in self._rows:
            family.add_metric([row["table_name"]], float(row["purged"]))
        return [family]
