"""What every pool replica (and the rate-limiter actor) sets up when its process starts.

Each deployment's constructor used to repeat it: settings, JSON logging, tracing, a lower CPU
priority, a database pool, the credential cipher, the SDP HTTP client. One helper keeps those
identical across the pools, so a new piece of process set-up is added once.

- ``prepare_process`` is synchronous for the Ray actor (an actor's ``__init__`` cannot await).
- ``replica_resources`` is what an async Serve constructor awaits: the process set-up plus the
  resources it asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from actors.ray_metrics import RayMetrics
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
        return self.settings.database_url.get_secret_value()


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
        resources.cipher = CredentialCipher.from_csv(settings.encryption_keys.get_secret_value())
    if sdp_connections is not None:
        resources.http = guarded_http_client(
            settings.sdp_url_policy, max_connections=sdp_connections
        )
    return resources
