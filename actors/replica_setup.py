"""What every pool replica (and the rate-limiter actor) sets up when its process starts:
settings, JSON logging, tracing, a lower CPU priority, a database pool, the credential cipher,
the SDP HTTP client, and metrics recorded through Ray (``RayMetrics``: exported by Ray's metrics
agent with the prefix ``ray_``; counters get ``_total``). One place, so the pools stay alike.

- ``prepare_process`` is synchronous for the Ray actor (an actor's ``__init__`` cannot await).
- ``replica_resources`` is what an async Serve constructor awaits: the process set-up plus the
  resources it asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr
from ray.util import metrics as ray_metrics

from core import metric_catalogue as mc
from core.metric_catalogue import MetricSpec
from core.settings import Settings, get_settings
from db.pool import create_pool
from pipeline.dispatch.process_priority import lower_pipeline_priority
from pipeline.observability.logging_setup import configure_logging
from pipeline.observability.tracing import configure_tracing
from pipeline.sdp.transport import guarded_http_client
from pipeline.tenancy.credential_cipher import CredentialCipher


@dataclass(frozen=True)
class DatabasePool:
    """How big a replica's asyncpg pool is. ``max_size=None``: ``AI_AGENTS_DB_POOL_MAX_SIZE``."""

    min_size: int = 0
    max_size: int | None = None


@dataclass
class ReplicaResources:
    settings: Settings
    metrics: RayMetrics
    pool: asyncpg.Pool | None = None
    cipher: CredentialCipher | None = None
    http: httpx.AsyncClient | None = None

    @property
    def database_url(self) -> str:
        return _resolved(self.settings.database_url, "AI_AGENTS_DATABASE_URL")

    @property
    def encryption_keys(self) -> str:
        return _resolved(self.settings.encryption_keys, "AI_AGENTS_ENCRYPTION_KEYS")


def _resolved(secret: SecretStr | None, variable: str) -> str:
    """A secret no replica starts without (``ai-agents serve`` and the RayService set it)."""
    if secret is None:
        raise RuntimeError(f"{variable} must be resolved before a replica starts")
    return secret.get_secret_value()


def prepare_process(
    settings: Settings, *, tracing: bool = True, lower_priority: bool = True
) -> None:
    """Tracing, JSON logging, then the pipeline's lower CPU priority (intake keeps the CPU
    first); all idempotent, since several replicas can share a worker process."""
    if tracing:
        configure_tracing()
    configure_logging(settings.log_level)
    if lower_priority:
        lower_pipeline_priority(settings.pipeline_nice)


async def replica_resources(
    *,
    database: DatabasePool | None = None,
    cipher: bool = False,
    sdp_connections: int | None = None,
    tracing: bool = True,
    lower_priority: bool = True,
) -> ReplicaResources:
    """The process set-up, then only what the caller asks for: a database pool, the credential
    cipher (decrypts tenants' SDP keys), an SDP client with ``sdp_connections`` connections
    (checked against the SDP URL policy at every connection)."""
    settings = get_settings()
    prepare_process(settings, tracing=tracing, lower_priority=lower_priority)
    resources = ReplicaResources(settings=settings, metrics=RayMetrics())
    if database is not None:
        resources.pool = await create_pool(
            resources.database_url,
            min_size=database.min_size,
            max_size=database.max_size or settings.db_pool_max_size,
            tenant_fair=settings.db_tenant_fair,
        )
    if cipher:
        resources.cipher = CredentialCipher.from_csv(resources.encryption_keys)
    if sdp_connections is not None:
        resources.http = guarded_http_client(
            settings.sdp_url_policy, max_connections=sdp_connections
        )
    return resources


class RayMetrics:
    def __init__(self) -> None:
        self._instruments: dict[str, Any] = {}

    def _get(self, spec: MetricSpec) -> Any:
        instrument = self._instruments.get(spec.name)
        if instrument is None:
            if spec.kind == "counter":
                instrument = ray_metrics.Counter(spec.name, spec.description, tag_keys=spec.labels)
            elif spec.kind == "histogram":
                buckets = (
                    mc.FAST_BUCKETS_S
                    if spec in (mc.HTTP_LATENCY, mc.RATE_LIMIT_WAIT_SECONDS)
                    else mc.LATENCY_BUCKETS_S
                )
                instrument = ray_metrics.Histogram(
                    spec.name, spec.description, boundaries=buckets, tag_keys=spec.labels
                )
            else:
                instrument = ray_metrics.Gauge(spec.name, spec.description, tag_keys=spec.labels)
            self._instruments[spec.name] = instrument
        return instrument

    def inc(self, spec: MetricSpec, labels: dict[str, str], value: float = 1.0) -> None:
        self._get(spec).inc(value, tags=labels)

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self._get(spec).observe(value, tags=labels)

    def set(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self._get(spec).set(value, tags=labels)
