"""Gauges and counters computed from PostgreSQL at scrape time, served on the ingress' /metrics.

Queue depth lives in the database, so it is read there: the answer is the same whichever
ingress replica is scraped and however many Enhancer replicas exist. The same holds for what
tenants spent on the LLM: the counters (tokens, cost) are the usage ledger's totals, so they
only ever grow and survive every restart; the budget gauges are this month's spend over each
tenant's monthly budget and over the deployment's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from core import metric_catalogue as mc
from db.pool import system_fetch
from db.repositories.lifecycle.retention import retention_stats
from db.repositories.llm_usage import spend_stats

MIN_CHECKED_FOR_HIT_RATIO = 5
MIN_NOTES_FOR_CALIBRATION = 20  # a reliability table of fewer notes is noise


class _Families(Collector):
    """Counter families built from one scrape's rows (no ``_created`` series: the totals are
    the ledger's, not this process's)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _spend(
    registry: CollectorRegistry,
    rows: list[asyncpg.Record],
    deployment_budget_usd: float | None,
) -> None:
    tokens = CounterMetricFamily(
        mc.LLM_TOKENS.name, mc.LLM_TOKENS.description, labels=list(mc.LLM_TOKENS.labels)
    )
    cost = CounterMetricFamily(
        mc.LLM_COST.name, mc.LLM_COST.description, labels=list(mc.LLM_COST.labels)
    )
    used = Gauge(
        mc.LLM_BUDGET_USED.name,
        mc.LLM_BUDGET_USED.description,
        mc.LLM_BUDGET_USED.labels,
        registry=registry,
    )
    month_cost = 0.0
    for row in rows:
        tenant = row["tenant_id"]
        tokens.add_metric([tenant, "prompt"], row["prompt_tokens"])
        tokens.add_metric([tenant, "completion"], row["completion_tokens"])
        cost.add_metric([tenant], float(row["cost_usd"]))
        month_cost += float(row["month_cost_usd"])
        for unit, spent, budget in (
            ("usd", row["month_cost_usd"], row["budget_usd"]),
            ("tokens", row["month_tokens"], row["budget_tokens"]),
        ):
            if budget is not None:
                ratio = float(spent) / float(budget) if budget > 0 else 1.0
                used.labels(tenant, unit).set(ratio)
    registry.register(_Families([tokens, cost]))
    if deployment_budget_usd is not None:
        Gauge(
            mc.LLM_DEPLOYMENT_BUDGET_USED.name,
            mc.LLM_DEPLOYMENT_BUDGET_USED.description,
            registry=registry,
        ).set(month_cost / deployment_budget_usd if deployment_budget_usd > 0 else 1.0)


async def render_db_metrics(
    pool: asyncpg.Pool | None, *, deployment_budget_usd: float | None = None
) -> bytes:
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
        spent = await spend_stats(pool, datetime.now(UTC).date().replace(day=1))
        retention = await retention_stats(pool)
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
    _spend(registry, spent, deployment_budget_usd)
    registry.register(_PurgedCounter(retention))
    oldest_row = gauge(mc.OLDEST_ROW_AGE)
    now = datetime.now(UTC)
    for row in retention:
        age = (now - row["oldest_at"]).total_seconds() if row["oldest_at"] else 0.0
        oldest_row.labels(row["table_name"]).set(max(0.0, age))
    _calibration(gauge, confidence)
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
