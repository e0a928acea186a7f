"""Service configuration (pydantic-settings, prefix ``AI_AGENTS_``).

Names fixed by DESIGN §4.9 are kept. Values that are secrets are ``SecretStr`` so they never
show up in a repr, a log line or an error body.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from serve_app.ingress_mode import IngressMode


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AI_AGENTS_", extra="ignore")

    # database
    database_url: SecretStr | None = Field(
        None, description="Service role URL (restricted, NOBYPASSRLS). Unset: embedded PostgreSQL"
    )
    migration_database_url: SecretStr | None = Field(
        None, description="Owner URL used by `ai-agents migrate`"
    )
    data_dir: Path = Field(Path(user_data_dir("ai-agents")),
                           description="Embedded database and local state")
    db_pool_max_size: int = Field(10, ge=1, le=200)

    # secrets
    admin_token: SecretStr | None = None
    encryption_keys: SecretStr | None = Field(
        None, description="Comma-separated Fernet keys, newest first"
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
        "haproxy", description="How HTTP reaches the Ingress when this process starts Ray")
    webhook_max_skew_s: int = Field(300, ge=1)
    secret_grace_hours: float = Field(24.0, ge=0)
    default_webhook_rate_per_minute: int = Field(1200, ge=1)

    # pipeline
    job_max_attempts: int = Field(5, ge=1, le=50)
    job_lease_s: int = Field(300, ge=10)
    job_deadline_s: float = Field(900.0, gt=0)
    job_retry_base_s: float = Field(5.0, ge=0)
    per_tenant_inflight: int = Field(8, ge=1, description="a tenant's max_inflight overrides")
    dispatch_max_inflight: int = Field(256, ge=1, description="jobs in flight, all tenants")
    dispatch_batch: int = Field(64, ge=1)
    dispatcher_poll_s: float = Field(2.0, gt=0)
    context_source_timeout_s: float = Field(5.0, gt=0)
    sdp_timeout_s: float = Field(15.0, gt=0)
    pipeline_nice: int = Field(19, ge=0, le=19, description="OS niceness of pipeline replicas")

    log_level: str = "INFO"

    @field_validator("llm_fallback_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
