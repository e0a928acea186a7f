"""The service's settings model: every ``AI_AGENTS_*`` setting with its default, bounds and
description (the reference page is generated from it); see ``core.settings`` for where values
come from."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.ingress_mode import IngressMode
from core.network.haproxy import DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT_S
from core.sdp_url_policy import IPNetwork, SdpUrlPolicy, parse_networks
from core.settings.sources import settings_sources
from core.tenant_types import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN

RetentionDays = Annotated[float, Field(ge=RETENTION_DAYS_MIN, le=RETENTION_DAYS_MAX)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AI_AGENTS_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code, environment, .env file, secrets directory, defaults (see the module docstring)."""
        return settings_sources(settings_cls, init_settings, env_settings)

    # database
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL of the service role (restricted: no superuser, no BYPASSRLS, "
        "owns nothing); unset: the embedded PostgreSQL in the data directory",
    )
    migration_database_url: SecretStr | None = Field(
        None,
        description="URL of the schema owner, used by `ai-agents migrate`, which also creates and "
        "grants the service role named in the database URL; embedded: its owner",
    )
    data_dir: Path = Field(
        Path(user_data_dir("ai-agents")),
        description="Embedded database, generated secrets (`local-secrets.json`, mode 0600) and "
        "the record of a running `ai-agents serve`",
    )
    db_pool_max_size: int = Field(
        10,
        ge=1,
        le=200,
        description="connections per database pool (one per ingress and pool replica); times "
        "the replicas must stay under the server's max_connections",
    )
    db_tenant_fair: bool = Field(
        True,
        description="a busy pool's connections go to the waiting tenant holding fewest "
        "(db.pool); false: first come, first served, as asyncpg hands them out",
    )

    # secrets
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token of the admin API (compared as a hash); embedded: generated "
        "into `local-secrets.json`; an external database needs it given",
    )
    encryption_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys for secrets at rest and feedback links, newest "
        "first (rotation: prepend a new key); embedded: generated; an external database needs "
        "them given",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token Prometheus sends to `GET /metrics`; embedded: generated "
        "(`metrics_token` in `local-secrets.json`); unset: `/metrics` refuses every request",
    )

    # LLM
    llm_base_url: str = Field(
        "https://openrouter.ai/api/v1", description="any OpenAI-compatible chat endpoint"
    )
    llm_api_key: SecretStr | None = Field(
        None, description="the LLM provider's key; unset: notes built from the context alone"
    )
    llm_model: str = Field("openai/gpt-4o-mini", description="the chat model")
    llm_fallback_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated models tried when the first fails"
    )
    llm_timeout_s: float = Field(
        60.0, gt=0, description="seconds one LLM call may take (also an embedding call)"
    )
    llm_max_attempts: int = Field(3, ge=1, le=10, description="LLM attempts per synthesis")
    llm_breaker_threshold: int = Field(
        5, ge=1, description="failures in a row that open the LLM circuit breaker"
    )
    llm_breaker_recovery_s: float = Field(
        30.0, gt=0, description="seconds the open breaker waits before it lets one call try"
    )
    # the provider key, shared by every tenant and replica (pipeline/llm/provider/)
    llm_shared_budget: bool = Field(
        True,
        description="every LLM call takes a grant from one provider budget shared by all "
        "replicas (fair between tenants; a 429 slows all, a 402 pauses all at once; only "
        "outages count toward the breaker); false: each call meets the provider alone",
    )
    llm_provider_rpm: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="requests per minute the provider key allows, all tenants together; "
        "unset: no limit of ours (a 429 still slows every call)",
    )
    llm_provider_tpm: int | None = Field(
        None,
        ge=1,
        le=10_000_000_000,
        description="tokens (prompt + max_tokens, corrected by the answer) per minute the key "
        "allows; unset: no limit",
    )
    llm_provider_concurrency: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="LLM calls in progress at once on the key, all replicas; unset: no limit",
    )
    llm_credit_poll_s: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="seconds between readings of the key's remaining credit (OpenRouter "
        "`GET /key`); after a 402 one call retries this often; 0: never read",
    )
    llm_credit_low_usd: float = Field(
        5.0,
        ge=0,
        le=100_000_000,
        description="remaining credit (USD) below which the LLMCreditsLow alert fires",
    )
    llm_monthly_budget_usd: float | None = Field(
        None,
        ge=0,
        le=100_000_000,
        description="LLM spend per calendar month (UTC) of every tenant together; past it every "
        "note is context-only until the month ends; unset: none (tenants' own budgets still "
        "apply)",
    )

    # HTTP
    http_host: str = Field(
        "127.0.0.1",
        description="where `ai-agents serve` listens; `ai-agents health` checks the same "
        "address when no `serve` runs on its data directory",
    )
    http_port: int = Field(8000, ge=1, le=65535, description="the HTTP port, as the host above")
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="request bodies above this are a 413, on every route, before "
        "authentication and parsing (HAProxy answers a declared one itself and closes)",
    )
    body_read_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds a client may take to send a request body; slower: 408 and the "
        "connection is closed",
    )
    haproxy_request_timeout_s: int = Field(
        DEFAULT_REQUEST_TIMEOUT_S,
        ge=1,
        le=3600,
        description="HAProxy mode: seconds a client has for its headers and the start of its "
        "body (408 and closed after); HAProxy's launcher (core/network/haproxy.py) reads it, "
        "and AI_AGENTS_MAX_BODY_BYTES, from the environment only",
    )
    ray_num_cpus: int = Field(
        0, ge=0, le=4096, description="the embedded Ray's logical CPUs (serve, demo); 0: nproc"
    )
    serve_ingress: IngressMode = Field(
        "haproxy", description="How HTTP reaches the Ingress when this process starts Ray"
    )
    webhook_max_skew_s: int = Field(
        300, ge=1, description="HMAC webhooks whose timestamp is further from now are refused"
    )
    secret_grace_hours: float = Field(
        24.0, ge=0, description="the previous webhook secret stays valid this long after rotation"
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDRs of the proxies in front of the ingress (HAProxy, a "
        "load balancer, an ingress controller) whose `X-Forwarded-For` names the client of a "
        "request, for per-client limits; unset: the connection's peer is the client (`serve` "
        "and `demo` in HAProxy mode trust loopback, where their HAProxy runs)",
    )
    default_webhook_rate_per_minute: int = Field(
        1200,
        ge=1,
        description="webhooks per minute per tenant and ingress replica, unless the tenant's "
        "settings say otherwise (429 + Retry-After above)",
    )

    # pipeline
    job_max_attempts: int = Field(
        5, ge=1, le=50, description="runs of a job before it ends `failed` with its last error"
    )
    job_lease_s: int = Field(
        300, ge=10, description="seconds a claimed job is leased; an expired lease re-queues it"
    )
    job_retry_base_s: float = Field(
        5.0,
        ge=0,
        description="seconds before a failed job runs again, doubling per attempt (300 s at most)",
    )
    per_tenant_inflight: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="optional hard cap on jobs running per tenant (a tenant's max_inflight "
        "overrides); unset: work-conserving fair share only; batch re-enhancement runs half of "
        "it, 4 when unset",
    )
    dispatch_max_inflight: int = Field(
        256,
        ge=1,
        description="upper bound of jobs in flight, all tenants; the cap in use is "
        "running Enhancer replicas x their target_ongoing_requests",
    )
    dispatch_adaptive: bool = Field(
        True, description="the in-flight cap also follows measured completions (Little's law)"
    )
    dispatch_min_inflight: int = Field(
        8, ge=1, le=100_000, description="floor of the adaptive cap: a quiet tenant's slot"
    )
    dispatch_batch: int = Field(64, ge=1, description="most jobs the Dispatcher claims at once")
    intake_priority_rate: float = Field(
        50.0,
        ge=0,
        le=1_000_000,
        description="webhooks/s above which the Dispatcher keeps only a trickle in flight so "
        "intake gets the CPU (a storm); 0: off",
    )
    intake_priority_inflight: int = Field(
        2, ge=1, le=100_000, description="jobs in flight while intake has priority"
    )
    intake_priority_hold_s: float = Field(
        3.0, ge=0, le=600, description="how long intake keeps priority after the rate falls"
    )
    enhancer_stage_places: int = Field(
        32,
        ge=0,
        le=100_000,
        description="per Enhancer replica: jobs in their context or write-back stage at once; "
        "beyond, places go tenant-fair (core.fair_gate); 0: no gate",
    )
    dispatcher_poll_s: float = Field(
        2.0, gt=0, description="seconds between claims when no NOTIFY wakes the Dispatcher"
    )
    context_source_timeout_s: float = Field(
        5.0, gt=0, description="seconds each context source (tickets, KB, assets) may take"
    )
    sdp_timeout_s: float = Field(15.0, gt=0, description="seconds one SDP API call may take")
    # SSRF rules for tenants' sdp_url (cloud metadata, link-local and URL credentials are
    # always refused)
    sdp_allow_loopback: bool = Field(
        False,
        description="allow tenants' SDP URLs on 127.0.0.0/8, ::1 and `localhost` "
        "(`ai-agents demo` turns it on for its simulator)",
    )
    sdp_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDRs, e.g. `10.20.0.0/16,fd00:1::/32`; when set, a "
        "private SDP address must lie in one; unset: any private network",
    )
    sdp_refused_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDRs no SDP URL may reach unless a network at least as "
        "narrow in AI_AGENTS_SDP_ALLOWED_NETWORKS holds the address; KubeRay renders the "
        "cluster's pod and service ranges here (the Ray head, dashboard, PostgreSQL)",
    )

    # embeddings (no base URL: the offline wordllama model shipped in its wheel)
    embedding_base_url: str | None = Field(
        None,
        description="an OpenAI-compatible `/embeddings` endpoint, e.g. "
        "`https://api.openai.com/v1`; unset: the offline `wordllama` model",
    )
    embedding_api_key: SecretStr | None = Field(None, description="key of the embedding endpoint")
    embedding_model: str | None = Field(
        None,
        description="model of the embedding endpoint (unset: `text-embedding-3-small`); a "
        "changed model makes stored vectors stale: run `ai-agents reindex`",
    )
    embedding_dimensions: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="vector size of the embedding endpoint (unset: 256, which the HNSW index "
        "needs); a change makes stored vectors stale",
    )

    # feedback links, suggestion quality, explain
    public_url: str | None = Field(
        None,
        description="the http(s):// address technicians reach the service at; the one-click "
        "feedback links in notes are `{PUBLIC_URL}/f/{token}`, omitted when unset",
    )
    feedback_link_ttl_days: float = Field(30.0, gt=0, description="how long a note's links work")
    feedback_link_rate_per_minute: int = Field(
        30,
        ge=1,
        description="feedback-link requests per client address per ingress replica (10x that "
        "per tenant)",
    )
    explain_retention_days: float = Field(
        30.0,
        ge=0,
        description="days each enhancement keeps its prompt and raw answer for `explain` "
        "(0: never stored)",
    )
    # retention: the Dispatcher purges what is older; a tenant's retention_days_* overrides
    retention_days_jobs: RetentionDays = Field(
        90.0,
        description="days a finished job is kept after it finished, with everything stored "
        "with it (webhook payload, proposals, explain record), unless the tenant's "
        "`retention_days_jobs` says otherwise",
    )
    retention_days_feedback: RetentionDays = Field(
        365.0,
        description="days technicians' feedback is kept, unless the tenant's "
        "`retention_days_feedback` says otherwise",
    )
    retention_days_audit: RetentionDays = Field(
        365.0,
        description="days audit-log rows are kept, unless the tenant's `retention_days_audit` "
        "says otherwise; rows of no tenant always",
    )
    retention_days_llm_usage: RetentionDays = Field(
        400.0,
        description="days the LLM usage ledger (what each LLM attempt cost, for billing) is "
        "kept, unless the tenant's `retention_days_llm_usage` says otherwise; 400 covers a "
        "year of monthly invoices and the month after to correct one",
    )
    retention_every_s: float = Field(
        300.0, ge=5, le=86_400, description="seconds between the Dispatcher's retention runs"
    )
    retention_batch: int = Field(
        500,
        ge=10,
        le=10_000,
        description="rows deleted per statement, each its own short transaction",
    )

    # the learned ranking of similar tickets (`ai-agents ranking fit`)
    ranking_min_deployment_outcomes: int = Field(
        50,
        ge=5,
        le=100_000,
        description="notes with a known outcome (resolved, or voted down) the deployment's "
        "ranking model is refitted from at the least; fewer keep the model in use",
    )
    ranking_model_ttl_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="seconds a ContextGatherer replica keeps a tenant's ranking model before "
        "reading it again: how long a refit takes to apply",
    )
    ranking_min_tenant_outcomes: int = Field(
        300,
        ge=50,
        le=1_000_000,
        description="notes with a known outcome a tenant needs before it gets a ranking model "
        "of its own; below that the deployment's model ranks its tickets",
    )
    pipeline_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="OS niceness of pipeline-only processes (Enhancer, ContextGatherer, "
        "Synthesizer, rate limiters) so intake wins contended CPU; 0: off",
    )

    log_level: str = Field(
        "INFO", description="level of the JSON logs (the CLI logs at WARNING whatever this says)"
    )

    @field_validator("llm_fallback_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator(
        "sdp_allowed_networks", "sdp_refused_networks", "trusted_proxies", mode="before"
    )
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [n.strip() for n in value.split(",") if n.strip()]
        parse_networks(value)  # type: ignore[arg-type]  # refuse a typo at start-up
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def sdp_url_policy(self) -> SdpUrlPolicy:
        return SdpUrlPolicy(
            allow_loopback=self.sdp_allow_loopback,
            allowed_networks=parse_networks(self.sdp_allowed_networks),
            refused_networks=parse_networks(self.sdp_refused_networks),
        )

    @field_validator("public_url", mode="before")
    @classmethod
    def _check_public_url(cls, value: object) -> object:
        """Links in notes must survive nh3's http/https allow-list, so refuse anything else."""
        if isinstance(value, str):
            value = value.strip().rstrip("/") or None
            if value is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
                raise ValueError("must be an http:// or https:// URL, e.g. https://ai.example.com")
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
