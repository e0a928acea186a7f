"""Service configuration (pydantic-settings, prefix ``AI_AGENTS_``).

The `AI_AGENTS_*` names are a public contract (README, KubeRay values, operators' secrets):
keep them. Values that are secrets are ``SecretStr`` so they never show up in a repr, a log line
or an error body.

Where settings come from, highest precedence first:

1. arguments given in code (CLI options such as ``--data-dir``);
2. environment variables ``AI_AGENTS_*``;
3. a dotenv file: ``AI_AGENTS_ENV_FILE``, default ``.env`` in the working directory (ignored
   when absent);
4. a secrets directory, ``AI_AGENTS_SECRETS_DIR``: one file per setting, named like the
   variable (``AI_AGENTS_DATABASE_URL``, ...), content = value — what Kubernetes writes when a
   Secret is mounted as a volume, so the service reads secrets without an environment variable;
5. the defaults below.

The two locations are read when a ``Settings`` is created, not at import, so a process can set
them before it builds its settings (tests do).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from core.ingress_mode import IngressMode
from core.sdp_url_policy import SdpUrlPolicy, parse_networks


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
        None, description="Service role URL (restricted, NOBYPASSRLS). Unset: embedded PostgreSQL"
    )
    migration_database_url: SecretStr | None = Field(
        None, description="Owner URL used by `ai-agents migrate`"
    )
    data_dir: Path = Field(
        Path(user_data_dir("ai-agents")), description="Embedded database and local state"
    )
    db_pool_max_size: int = Field(10, ge=1, le=200)
    db_tenant_fair: bool = Field(
        True,
        description="a busy pool's connections go to the waiting tenant holding fewest "
        "(db.pool); false: first come, first served, as asyncpg hands them out",
    )

    # secrets
    admin_token: SecretStr | None = None
    encryption_keys: SecretStr | None = Field(
        None, description="Comma-separated Fernet keys, newest first"
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token for GET /metrics (embedded: generated); unset: refused"
    )

    # LLM
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = None
    llm_model: str = "openai/gpt-4o-mini"
    llm_fallback_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_attempts: int = Field(3, ge=1, le=10)
    llm_breaker_threshold: int = Field(5, ge=1)
    llm_breaker_recovery_s: float = Field(30.0, gt=0)

    # HTTP
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    serve_ingress: IngressMode = Field(
        "haproxy", description="How HTTP reaches the Ingress when this process starts Ray"
    )
    webhook_max_skew_s: int = Field(300, ge=1)
    secret_grace_hours: float = Field(24.0, ge=0)
    default_webhook_rate_per_minute: int = Field(1200, ge=1)

    # pipeline
    job_max_attempts: int = Field(5, ge=1, le=50)
    job_lease_s: int = Field(300, ge=10)
    job_retry_base_s: float = Field(5.0, ge=0)
    per_tenant_inflight: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="optional hard cap per tenant (a tenant's max_inflight overrides); "
        "unset: work-conserving fair share",
    )
    dispatch_max_inflight: int = Field(
        256,
        ge=1,
        description="upper bound of jobs in flight, all tenants; the cap in use is "
        "running Enhancer replicas x their target_ongoing_requests",
    )
    dispatch_batch: int = Field(64, ge=1)
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
    dispatcher_poll_s: float = Field(2.0, gt=0)
    context_source_timeout_s: float = Field(5.0, gt=0)
    sdp_timeout_s: float = Field(15.0, gt=0)
    # SSRF rules for tenants' sdp_url (link-local and URL credentials are always refused)
    sdp_allow_loopback: bool = Field(False, description="allow SDP URLs on 127.0.0.0/8 and ::1")
    sdp_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CIDRs; when set, private SDP addresses must be in one"
    )

    # embeddings (no base URL: the offline wordllama model shipped in its wheel)
    embedding_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint for /embeddings; unset: offline model"
    )
    embedding_api_key: SecretStr | None = None
    embedding_model: str | None = Field(None, description="default text-embedding-3-small")
    embedding_dimensions: int | None = Field(None, ge=1, le=4096, description="default 256")

    # feedback links, suggestion quality, explain
    public_url: str | None = Field(
        None,
        description="Base URL technicians reach the service at; the one-click feedback "
        "links in notes are omitted when unset",
    )
    feedback_link_ttl_days: float = Field(30.0, gt=0, description="how long a note's links work")
    feedback_link_rate_per_minute: int = Field(30, ge=1, description="per client address")
    explain_retention_days: float = Field(
        30.0, ge=0, description="keep each enhancement's prompt and raw answer this long"
    )
    pipeline_nice: int = Field(19, ge=0, le=19, description="OS niceness of pipeline replicas")

    log_level: str = "INFO"

    @field_validator("llm_fallback_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator("sdp_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [n.strip() for n in value.split(",") if n.strip()]
        parse_networks(value)  # type: ignore[arg-type]  # refuse a typo at start-up
        return value

    @property
    def sdp_url_policy(self) -> SdpUrlPolicy:
        return SdpUrlPolicy(
            allow_loopback=self.sdp_allow_loopback,
            allowed_networks=parse_networks(self.sdp_allowed_networks),
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


ENV_FILE_VARIABLE = "AI_AGENTS_ENV_FILE"
SECRETS_DIR_VARIABLE = "AI_AGENTS_SECRETS_DIR"


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    sources: list[PydanticBaseSettingsSource] = [
        init_settings,
        env_settings,
        DotEnvSettingsSource(settings_cls, env_file=os.environ.get(ENV_FILE_VARIABLE, ".env")),
    ]
    secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
    if secrets_dir:
        if not os.path.isdir(secrets_dir):
            raise ValueError(f"{SECRETS_DIR_VARIABLE}={secrets_dir}: not a directory")
        sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
    return tuple(sources)
