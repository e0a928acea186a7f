"""Gauges computed from PostgreSQL at scrape time, served on the ingress' /metrics.

Queue depth lives in the database, so it is read there: the answer is the same whichever
ingress replica is scraped and however many Enhancer replicas exist.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from core import metric_catalogue as mc
from db.pool import system_fetch

MIN_CHECKED_FOR_HIT_RATIO = 5
MIN_NOTES_FOR_CALIBRATION = 20  # a reliability table of fewer notes is noise


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
        confidence = await system_fetch(pool, "SELECT * FROM app_confidence_stats(30)")
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
    _calibration(gauge, confidence)
    return generate_latest(registry)


def _calibration(gauge: Callable[[mc.MetricSpec], Gauge], rows: list[asyncpg.Record]) -> None:
    """The live reliability table and ECE per tenant, from app_confidence_stats' deciles."""
    error, reliability, notes = (
        gauge(mc.CONFIDENCE_CALIBRATION_ERROR),
        gauge(mc.CONFIDENCE_RELIABILITY),
        gauge(mc.CONFIDENCE_NOTES),
    )
    by_tenant: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_tenant.setdefault(row["tenant_id"], []).append(row)
    for tenant, buckets in by_tenant.items():
        total = sum(r["notes"] for r in buckets)
        if total < MIN_NOTES_FOR_CALIBRATION:
            continue
        ece = 0.0
        for r in buckets:
            label = f"{r['bucket'] / 10:.1f}-{(r['bucket'] + 1) / 10:.1f}"
            observed = r["came_true"] / r["notes"]
            reliability.labels(tenant, label, "stated").set(r["mean_confidence"])
            reliability.labels(tenant, label, "observed").set(observed)
            notes.labels(tenant, label).set(r["notes"])
            ece += r["notes"] / total * abs(r["mean_confidence"] - observed)
        error.labels(tenant).set(round(ece, 4))
