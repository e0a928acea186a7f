"""Per-tenant behaviour settings (stored as JSON on the tenant row) and the decrypted view of a
tenant that the pipeline works with."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from core.tenant_types import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN, Edition

# Cloud SDP throttles at roughly 20 requests/minute per account; on-prem is the operator's call.
DEFAULT_SDP_RATE = {"cloud": 20, "onprem": 120}
# The claim (app_claim_jobs) clamps stored values to the same bound, so a value written before
# validation existed can never make dispatch fail.
MAX_INFLIGHT_LIMIT = 100_000


class TenantSettings(BaseModel):
    """Every number is bounded: the admin API stores what it accepts, and an unbounded value
    (a max_inflight of 10**12) would only fail later, inside the dispatcher or PostgreSQL.
    The rate bounds leave room for "effectively unlimited" (the benchmarks use 10^6/min)."""

    model_config = ConfigDict(extra="forbid")

    webhook_rate_per_minute: int | None = Field(
        None, ge=1, le=10_000_000, description="None: service default"
    )
    llm_rate_per_minute: int = Field(60, ge=1, le=1_000_000)
    sdp_rate_per_minute: int | None = Field(
        None, ge=1, le=1_000_000, description="None: by edition"
    )
    max_inflight: int | None = Field(
        None,
        ge=1,
        le=MAX_INFLIGHT_LIMIT,
        description="hard cap on running jobs; None: fair share only",
    )
    dispatch_weight: int = Field(
        1, ge=1, le=100, description="share of capacity when several tenants have backlog"
    )
    redact_pii: bool = Field(
        True,
        description="remove secrets, contact details, card numbers and the requester from the "
        "LLM prompt",
    )
    show_to_requester: bool = False
    note_max_words: int = Field(
        250, ge=50, le=5000, description="Longer notes are trimmed, least useful parts first"
    )
    min_ticket_chars: int = Field(
        15, ge=0, le=100_000, description="Thinner tickets get a short note"
    )
    monthly_budget_usd: float | None = Field(
        None,
        ge=0,
        le=10_000_000,
        description="LLM spend per calendar month (UTC); past it the notes are context-only "
        "until the month ends; None: no budget",
    )
    monthly_budget_tokens: int | None = Field(
        None,
        ge=0,
        le=100_000_000_000,
        description="LLM tokens (prompt + completion) per calendar month (UTC), likewise",
    )
    retention_days_jobs: float | None = Field(
        None,
        ge=RETENTION_DAYS_MIN,
        le=RETENTION_DAYS_MAX,
        description="days finished jobs and their enhancement records are kept; "
        "None: AI_AGENTS_RETENTION_DAYS_JOBS",
    )
    retention_days_feedback: float | None = Field(
        None,
        ge=RETENTION_DAYS_MIN,
        le=RETENTION_DAYS_MAX,
        description="days feedback is kept; None: AI_AGENTS_RETENTION_DAYS_FEEDBACK",
    )
    retention_days_audit: float | None = Field(
        None,
        ge=RETENTION_DAYS_MIN,
        le=RETENTION_DAYS_MAX,
        description="days audit rows are kept; None: AI_AGENTS_RETENTION_DAYS_AUDIT",
    )
    retention_days_llm_usage: float | None = Field(
        None,
        ge=RETENTION_DAYS_MIN,
        le=RETENTION_DAYS_MAX,
        description="days LLM usage ledger rows are kept; None: AI_AGENTS_RETENTION_DAYS_LLM_USAGE",
    )

    def sdp_rate(self, edition: Edition) -> int:
        return self.sdp_rate_per_minute or DEFAULT_SDP_RATE[edition]


@dataclass(frozen=True)
class TenantRuntime:
    """What the pipeline needs of a tenant, with its SDP key decrypted (never logged)."""

    tenant_id: str
    sdp_base_url: str
    sdp_edition: Edition
    sdp_portal: str | None
    sdp_api_key: str
    settings: TenantSettings

    def __repr__(self) -> str:  # keep the key out of any accidental log line
        return f"TenantRuntime(tenant_id={self.tenant_id!r}, edition={self.sdp_edition!r})"
