"""Tenant rows. Reads and writes run inside the tenant's own transaction (RLS applies); the
cross-tenant lookups go through the ``app_*`` functions."""

from __future__ import annotations

from typing import Any

import asyncpg

from db.pool import system_fetch, tenant_transaction

_UPDATABLE = {
    "name",
    "status",
    "sdp_base_url",
    "sdp_edition",
    "sdp_portal",
    "sdp_api_key_enc",
    "webhook_auth_mode",
    "webhook_secret_enc",
    "webhook_secret_prev_enc",
    "webhook_secret_prev_expires_at",
    "api_token_hash",
    "settings",
}


class TenantExists(Exception):
    pass


class UnknownTenant(LookupError):
    """No tenant has this id. The one "unknown tenant" error of every layer, raised here where
    the lookup happens (``db/`` sits below ``pipeline/``, so both can use it): the admin API
    answers it with a 404, the CLI with ``unknown tenant '<id>'``, importers and re-enhancement
    refuse to start, the enhancer records it as the failed SDP fetch."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"unknown tenant {tenant_id!r}")
        self.tenant_id = tenant_id


async def insert_tenant(pool: asyncpg.Pool, row: dict[str, Any]) -> None:
    columns = list(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO tenants ({', '.join(columns)}) VALUES ({placeholders})"
    try:
        async with tenant_transaction(pool, row["id"]) as conn:
            await conn.execute(sql, *row.values())
    except asyncpg.UniqueViolationError as exc:
        raise TenantExists(row["id"]) from exc


async def get_tenant(conn: asyncpg.Connection, tenant_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id)


async def fetch_tenant(pool: asyncpg.Pool, tenant_id: str) -> asyncpg.Record:
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await get_tenant(conn, tenant_id)
    if row is None:
        raise UnknownTenant(tenant_id)
    return row


async def update_tenant(
    pool: asyncpg.Pool, tenant_id: str, fields: dict[str, Any]
) -> asyncpg.Record:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
    sql = f"UPDATE tenants SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *"
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await conn.fetchrow(sql, tenant_id, *fields.values())
    if row is None:
        raise UnknownTenant(tenant_id)
    return row


async def list_tenants(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await system_fetch(pool, "SELECT * FROM app_list_tenants()")


async def tenant_for_token_hash(pool: asyncpg.Pool, token_hash: str) -> asyncpg.Record | None:
    rows = await system_fetch(pool, "SELECT * FROM app_tenant_for_token($1)", token_hash)
    return rows[0] if rows else None
