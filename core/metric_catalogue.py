"""Every metric this system exports, with the name Prometheus sees.

Two scrape targets (docs/operations/metrics.md):
- Ray's metrics agent on each node (port 8080 on KubeRay): counters/histograms/gauges recorded
  inside replicas with ``ray.util.metrics``. Ray prefixes them with ``ray_`` and appends
  ``_total`` to counters.
- The ingress ``GET /metrics``: gauges and counters computed from PostgreSQL at scrape time
  (queue depth, feedback, LLM tokens and cost from the usage ledger, budgets), correct whatever
  the replica count, exported with their names unchanged (counters with ``_total``).

Alert rules and dashboards must only use ``exported`` names; a test scrapes a running system
and checks each one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]
Target = Literal["ray", "ingress"]

# Buckets reach 600 s+ so a stuck 10-minute enhancement is still measured, not "+Inf".
LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200]
FAST_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # name given to the client library
    kind: Kind
    target: Target
    labels: tuple[str, ...]
    description: str

    @property
    def exported(self) -> str:
        """The base name Prometheus stores (histograms add _bucket/_sum/_count)."""
        suffix = "_total" if self.kind == "counter" else ""
        if self.target == "ingress":
            return f"{self.name}{suffix}"
        return f"ray_{self.name}{suffix}"


def _ray(name: str, kind: Kind, labels: tuple[str, ...], description: str) -> MetricSpec:
    return MetricSpec(name, kind, "ray", labels, description)


def _db(name: str, labels: tuple[str, ...], description: str) -> MetricSpec:
    return MetricSpec(name, "gauge", "ingress", labels, description)


WEBHOOKS = _ray(
    "ai_agents_webhooks",
    "counter",
    ("tenant", "outcome"),
    "Webhooks received, by outcome (accepted, duplicate, rejected_*, throttled, error)",
)
HTTP_REQUESTS = _ray(
    "ai_agents_http_requests",
    "counter",
    ("route", "method", "status"),
    "Ingress requests by route template and status code",
)
HTTP_LATENCY = _ray(
    "ai_agents_http_request_duration_seconds",
    "histogram",
    ("route", "method"),
    "Ingress request latency by route template",
)
ENHANCEMENTS = _ray(
    "ai_agents_enhancements",
    "counter",
    ("tenant", "status"),
    "Finished enhancements: completed, context_only, failed, skipped",
)
ENHANCEMENT_LATENCY = _ray(
    "ai_agents_enhancement_duration_seconds",
    "histogram",
    ("tenant", "status"),
    "Webhook receipt to note, seconds",
)
STAGE_LATENCY = _ray(
    "ai_agents_stage_duration_seconds",
    "histogram",
    ("stage",),
    "Per-stage duration: context, synthesis, writeback",
)
JOB_ATTEMPTS = _ray(
    "ai_agents_job_retries",
    "counter",
    ("tenant", "reason"),
    "Jobs put back in the queue for another attempt",
)
EXTERNAL_CALLS = _ray(
    "ai_agents_external_calls",
    "counter",
    ("service", "outcome"),
    "Calls to the LLM and to SDP by outcome",
)
EXTERNAL_LATENCY = _ray(
    "ai_agents_external_call_duration_seconds",
    "histogram",
    ("service",),
    "Latency of LLM and SDP calls",
)
BREAKER_STATE = _ray(
    "ai_agents_circuit_breaker_state", "gauge", ("service",), "0 closed, 1 half-open, 2 open"
)
RATE_LIMIT_WAITS = _ray(
    "ai_agents_rate_limit_waits",
    "counter",
    ("tenant", "bucket"),
    "Times a call waited on a per-tenant token bucket",
)
RATE_LIMIT_WAIT_SECONDS = _ray(
    "ai_agents_rate_limit_wait_seconds",
    "histogram",
    ("bucket",),
    "Time spent waiting on per-tenant token buckets",
)
ISOLATION_VIOLATIONS = _ray(
    "ai_agents_tenant_isolation_violations",
    "counter",
    ("tenant",),
    "Denied cross-tenant access attempts",
)
DB_POOL_CONNECTIONS = _ray(
    "ai_agents_db_pool_connections",
    "gauge",
    ("component", "state"),
    "asyncpg pool connections in use / idle per component",
)
REENHANCE_ITEMS = _ray(
    "ai_agents_reenhance_items",
    "counter",
    ("tenant", "outcome"),
    "Batch re-enhancement items by outcome",
)
BACKLOG_JOBS = _ray(
    "ai_agents_backlog_jobs",
    "gauge",
    ("tenant",),
    "Claimable jobs (queued, due, tenant enabled) the autoscaling policy uses",
)
DISPATCH_INFLIGHT_LIMIT = _ray(
    "ai_agents_dispatch_inflight_limit",
    "gauge",
    (),
    "Jobs the Dispatcher lets into the pipeline at once (adaptive admission, within bounds)",
)
AUTOSCALE_DESIRED = _ray(
    "ai_agents_autoscale_desired_replicas",
    "gauge",
    ("deployment",),
    "Replicas the backlog policy asks for, within min/max, before the delays",
)
INTAKE_PRIORITY = _ray(
    "ai_agents_intake_priority",
    "gauge",
    (),
    "1 while the Dispatcher holds storming tenants' jobs back so intake gets the CPU, else 0",
)
DISPATCH_FAILURES = _ray(
    "ai_agents_dispatch_failures",
    "counter",
    ("tenant",),
    "Claims for one tenant that failed and left the tenant out for a while",
)
RETRIEVAL_LATENCY = _ray(
    "ai_agents_retrieval_seconds",
    "histogram",
    ("source",),
    "Similar-ticket / KB retrieval (full-text + vector + fusion), seconds",
)
VECTOR_SEARCH_AVAILABLE = _ray(
    "ai_agents_vector_search_available",
    "gauge",
    (),
    "1 when pgvector search is on, 0 when retrieval fell back to "
    "full-text only (extension missing or embedding failing)",
)

REDACTIONS = _ray(
    "ai_agents_redactions",
    "counter",
    ("tenant", "kind"),
    "Placeholders put into LLM prompts by kind (secret, email, card, phone, requester_name, "
    "requester_email); never the values",
)
LLM_PROVIDER_STATE = _ray(
    "ai_agents_llm_provider_state",
    "gauge",
    (),
    "The shared LLM provider budget: 0 ok, 1 slowed (a 429's Retry-After), 2 paused (no credit)",
)
LLM_CREDIT_REMAINING = _ray(
    "ai_agents_llm_credit_remaining_usd",
    "gauge",
    (),
    "The LLM key's remaining credit in USD (OpenRouter's limit_remaining), polled",
)
LLM_CREDIT_LOW = _ray(
    "ai_agents_llm_credit_low_usd",
    "gauge",
    (),
    "AI_AGENTS_LLM_CREDIT_LOW_USD: below this remaining credit LLMCreditsLow fires",
)

QUEUE_DEPTH = _db("ai_agents_queue_depth", ("tenant",), "Jobs queued in PostgreSQL")
OLDEST_QUEUED_AGE = _db(
    "ai_agents_oldest_queued_age_seconds", ("tenant",), "Age of the oldest queued job"
)
JOBS_RUNNING = _db("ai_agents_jobs_running", ("tenant",), "Jobs currently leased")
FEEDBACK_AVERAGE = _db(
    "ai_agents_feedback_average_rating", ("tenant",), "Average 1-5 rating over the last 7 days"
)
FEEDBACK_POSITIVE = _db(
    "ai_agents_feedback_positive_ratio",
    ("tenant",),
    "Share of positive feedback over the last 7 days (0-1)",
)
SUGGESTION_HIT_RATIO = _db(
    "ai_agents_suggestion_hit_ratio",
    ("tenant",),
    "Share of resolved enhanced tickets whose note proposed the fix, "
    "last 30 days (tenants with at least 5)",
)
CONFIDENCE_CALIBRATION_ERROR = _db(
    "ai_agents_confidence_calibration_error",
    ("tenant",),
    "Expected calibration error of the notes' stated confidence against whether the first "
    "precedent was the fix, last 30 days (tenants with at least 20 such notes)",
)
CONFIDENCE_RELIABILITY = _db(
    "ai_agents_confidence_reliability",
    ("tenant", "bucket", "measure"),
    "Per tenth of stated confidence: the mean stated (measure=stated) and the share that came "
    "true (measure=observed), last 30 days (tenants with at least 20 such notes)",
)
CONFIDENCE_NOTES = _db(
    "ai_agents_confidence_notes",
    ("tenant", "bucket"),
    "Notes whose confidence outcome is known, per tenth of stated confidence, last 30 days",
)
DATABASE_UP = _db("ai_agents_database_up", (), "1 when the ingress reached PostgreSQL at scrape")
LLM_TOKENS = MetricSpec(
    "ai_agents_llm_tokens",
    "counter",
    "ingress",
    ("tenant", "kind"),
    "LLM tokens the provider billed, kind prompt or completion (the usage ledger: every answered "
    "attempt)",
)
LLM_COST = MetricSpec(
    "ai_agents_llm_cost_usd",
    "counter",
    "ingress",
    ("tenant",),
    "LLM cost in USD the provider billed (the usage ledger: every answered attempt)",
)
LLM_BUDGET_USED = _db(
    "ai_agents_llm_budget_used_ratio",
    ("tenant", "unit"),
    "This month's LLM spend over the tenant's monthly budget (unit usd or tokens; 1: spent, "
    "its notes are context-only)",
)
LLM_DEPLOYMENT_BUDGET_USED = _db(
    "ai_agents_llm_deployment_budget_used_ratio",
    (),
    "This month's LLM spend of every tenant over AI_AGENTS_LLM_MONTHLY_BUDGET_USD",
)
# Retention, read from PostgreSQL at scrape: the purge runs in the Dispatcher and counts what it
# deletes in the database, so the counter survives restarts and is the same on every ingress.
RETENTION_PURGED = MetricSpec(
    "ai_agents_retention_purged",
    "counter",
    "ingress",
    ("table",),
    "Rows deleted by retention (enhancements, enhancement_feedback, audit_log, llm_usage)",
)
OLDEST_ROW_AGE = _db(
    "ai_agents_oldest_row_age_seconds",
    ("table",),
    "Age of the oldest row retention judges, per table (jobs by when they finished, LLM usage "
    "by when the attempt was recorded)",
)

ALL_METRICS: tuple[MetricSpec, ...] = tuple(
    v for v in globals().values() if isinstance(v, MetricSpec)
)
