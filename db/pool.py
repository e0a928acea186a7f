"""asyncpg pools and the only two ways code talks to the database.

- ``tenant_transaction``: every tenant read/write. The tenant is set with
  ``set_config(..., true)`` so it lives exactly as long as the transaction and a pooled
  connection can never carry one tenant's context into another's work.
- ``system_fetch``: the narrow cross-tenant SECURITY DEFINER functions (``app_*``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from db.query_tracing import trace_queries

TENANT_TABLES = (
    "tenants",
    "enhancements",
    "enhancement_feedback",
    "audit_log",
    "ticket_history",
    "kb_documents",
    "assets",
    "ticket_embeddings",
    "kb_chunks",
    "ticket_terms",
)


class UnsafeDatabaseRole(RuntimeError):
    """The service's role could read across tenants; refusing to start."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    trace_queries(conn)


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = 30.0
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=command_timeout,
        server_settings={"application_name": "ai-agents"},
    )


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, tenant_id: str
) -> AsyncIterator[asyncpg.Connection]:
    if not tenant_id:
        raise ValueError("tenant_id is required for a tenant transaction")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", tenant_id)
        yield conn


async def system_fetch(pool: asyncpg.Pool, function_sql: str, *args: Any) -> list[asyncpg.Record]:
    """Call one ``app_*`` SECURITY DEFINER function (the SQL names it; args are bound)."""
    async with pool.acquire() as conn:
        return await conn.fetch(function_sql, *args)


async def verify_service_role(pool: asyncpg.Pool) -> None:
    """Refuse a role that is superuser, has BYPASSRLS, or owns a tenant table."""
    async with pool.acquire() as conn:
        role = await conn.fetchrow(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        if role["rolsuper"]:
            raise UnsafeDatabaseRole(
                f"database role {role['rolname']!r} is a superuser; "
                "AI_AGENTS_DATABASE_URL must use the restricted service role"
            )
        if role["rolbypassrls"]:
            raise UnsafeDatabaseRole(
                f"database role {role['rolname']!r} has BYPASSRLS; tenant isolation would not hold"
            )
        owned = await conn.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])
                 AND pg_has_role(current_user, c.relowner, 'USAGE')""",
            list(TENANT_TABLES),
        )
        if owned:
            names = ", ".join(sorted(r["relname"] for r in owned))
            raise UnsafeDatabaseRole(
                f"database role {role['rolname']!r} owns tenant tables ({names}); "
                "RLS does not bind an owner"
            )


def pool_usage(pool: asyncpg.Pool) -> tuple[int, int]:
    """(in use, idle) connections, for the pool gauge."""
    size = pool.get_size()
    idle = pool.get_idle_size()
    return size - idle, idle
