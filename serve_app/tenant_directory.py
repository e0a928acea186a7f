"""Looks tenants up for the ingress: webhook credentials and API-token identity.

A short TTL cache keeps the hot webhook path to one round trip (the insert); rotation and
disabling take effect within ``ttl_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from core.webhook_auth import WebhookCredentials
from db.pool import tenant_transaction
from db.repositories.tenants import get_tenant, tenant_for_token_hash
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.credential_cipher import CredentialCipher, hash_token
from pipeline.tenancy.runtime import TENANT_CACHE_TTL_S
from pipeline.tenancy.ttl_cache import TtlCache


@dataclass(frozen=True)
class TenantAuthView:
    tenant_id: str
    webhook: WebhookCredentials
    settings: TenantSettings


class TenantDirectory:
    def __init__(
        self, pool: asyncpg.Pool, cipher: CredentialCipher, *, ttl_s: float = TENANT_CACHE_TTL_S
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._views: TtlCache[str, TenantAuthView | None] = TtlCache(self._load, ttl_s=ttl_s)

    async def webhook_view(self, tenant_id: str) -> TenantAuthView | None:
        """None for an unknown or disabled tenant (callers answer the same 403 either way)."""
        return await self._views.get(tenant_id)

    async def _load(self, tenant_id: str) -> TenantAuthView | None:
        async with tenant_transaction(self._pool, tenant_id) as conn:
            row = await get_tenant(conn, tenant_id)
        if row is None or row["status"] != "active":
            return None
        secrets = [self._cipher.decrypt(row["webhook_secret_enc"])]
        expires = row["webhook_secret_prev_expires_at"]
        if row["webhook_secret_prev_enc"] and expires and expires > datetime.now(UTC):
            secrets.append(self._cipher.decrypt(row["webhook_secret_prev_enc"]))
        return TenantAuthView(
            tenant_id=tenant_id,
            webhook=WebhookCredentials(mode=row["webhook_auth_mode"], secrets=tuple(secrets)),
            settings=TenantSettings(**row["settings"]),
        )

    async def tenant_for_token(self, token: str) -> str | None:
        """The active tenant owning this API token, or None."""
        row = await tenant_for_token_hash(self._pool, hash_token(token))
        if row is None or row["status"] != "active":
            return None
        return row["tenant_id"]
