"""Gauges computed from PostgreSQL at scrape time, served on the ingress' /metrics.

Queue depth lives in the database, so it is read there: the answer is the same whichever
ingress replica is scraped and however many Enhancer replicas exist.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from core import metric_catalogue as mc
from db.pool import system_fetch

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
    return generate_latest(registry)
