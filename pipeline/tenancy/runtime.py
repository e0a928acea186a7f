"""Loads a tenant's runtime view (SDP address and decrypted key, settings) from the database.

Every part that calls SDP for a tenant (enhancer, context gatherer, importers, the demo) reads
it the same way; callers cache it for ``TENANT_CACHE_TTL_S`` so rotation and disabling take
effect within seconds without a database round trip per ticket.
"""

from __future__ import annotations

import asyncpg

from db.pool import tenant_transaction
from db.repositories.tenants import get_tenant
from pipeline.tenancy.config import TenantRuntime, TenantSettings
from pipeline.tenancy.credential_cipher import CredentialCipher

TENANT_CACHE_TTL_S = 2.0


async def load_tenant_runtime(
    pool: asyncpg.Pool, cipher: CredentialCipher, tenant_id: str
) -> TenantRuntime | None:
    """The decrypted tenant view the pipeline uses to call SDP."""
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await get_tenant(conn, tenant_id)
    if row is None:
        return None
    return TenantRuntime(
        tenant_id=tenant_id,
        sdp_base_url=row["sdp_base_url"],
        sdp_edition=row["sdp_edition"],
        sdp_portal=row["sdp_portal"],
        sdp_api_key=cipher.decrypt(row["sdp_api_key_enc"]),
        settings=TenantSettings(**row["settings"]),
    )
