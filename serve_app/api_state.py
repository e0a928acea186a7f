"""Everything the HTTP routes need, built once per ingress replica.

The database pool is created lazily (and re-created after a failure) so an ingress replica
starts, answers /health and returns 503 + Retry-After while PostgreSQL is away, instead of
crash-looping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from core.sdp_url_policy import IPNetwork
from core.settings import Settings
from db.pool import create_pool, verify_service_role
from pipeline.note.feedback_links import FeedbackLinkSigner
from pipeline.observability.metrics import InMemoryMetrics, Metrics
from pipeline.retention.purge import RetentionPolicy
from pipeline.tenancy.admin import TenantAdmin
from pipeline.tenancy.credential_cipher import CredentialCipher, hash_token
from serve_app.guards.client_throttle import ClientThrottle
from serve_app.guards.intake_throttle import IntakeThrottle
from serve_app.tenant_directory import TenantDirectory

ReadinessProbe = Callable[[], Awaitable[dict[str, dict[str, Any]]]]


class DatabaseUnavailable(RuntimeError):
    pass


@dataclass
class ApiState:
    settings: Settings
    database_url: str
    cipher: CredentialCipher
    admin_token_hash: str | None
    metrics: Metrics = field(default_factory=InMemoryMetrics)
    throttle: IntakeThrottle = field(default_factory=IntakeThrottle)
    clients: ClientThrottle = field(default_factory=ClientThrottle)
    trusted_proxies: tuple[IPNetwork, ...] = ()
    readiness_probe: ReadinessProbe | None = None
    directory_ttl_s: float = 2.0
    feedback_links: FeedbackLinkSigner | None = None
    # the last /api/v1/ready checks (monotonic time, components), reused for anonymous callers
    ready_cache: tuple[float, dict[str, dict[str, Any]]] | None = None
    _pool: asyncpg.Pool | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _directory: TenantDirectory | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ApiState:
        if settings.database_url is None or settings.encryption_keys is None:
            raise RuntimeError("database URL and encryption keys must be resolved before serving")
        admin = settings.admin_token.get_secret_value() if settings.admin_token else None
        kwargs.setdefault(
            "feedback_links",
            FeedbackLinkSigner.from_encryption_keys(
                settings.encryption_keys.get_secret_value(),
                ttl_days=settings.feedback_link_ttl_days,
            ),
        )
        return cls(
            settings=settings,
            database_url=settings.database_url.get_secret_value(),
            cipher=CredentialCipher.from_csv(settings.encryption_keys.get_secret_value()),
            admin_token_hash=hash_token(admin) if admin else None,
            trusted_proxies=settings.trusted_proxy_networks,
            **kwargs,
        )

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    pool = await create_pool(
                        self.database_url,
                        min_size=1,
                        max_size=self.settings.db_pool_max_size,
                        command_timeout=10,
                        tenant_fair=self.settings.db_tenant_fair,
                    )
                except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                    raise DatabaseUnavailable(str(exc)) from exc
                await verify_service_role(pool)
                self._pool = pool
                self._directory = TenantDirectory(pool, self.cipher, ttl_s=self.directory_ttl_s)
        return self._pool

    async def directory(self) -> TenantDirectory:
        await self.pool()
        assert self._directory is not None
        return self._directory

    async def tenant_admin(self) -> TenantAdmin:
        return TenantAdmin(
            await self.pool(),
            self.cipher,
            secret_grace=timedelta(hours=self.settings.secret_grace_hours),
            url_policy=self.settings.sdp_url_policy,
            retention=RetentionPolicy.from_settings(self.settings),
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
