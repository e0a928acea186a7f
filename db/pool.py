"""asyncpg pools and the only two ways code talks to the database.

- ``tenant_transaction``: every tenant read/write. The tenant is set with
  ``set_config(..., true)`` so it lives exactly as long as the transaction and a pooled
  connection can never carry one tenant's context into another's work.
- ``system_fetch``: the narrow cross-tenant SECURITY DEFINER functions (``app_*``).

A released connection goes straight back to the pool, without asyncpg's reset statement
(``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``: one more round trip and server
work on every release, so on every webhook). That is safe because nothing run on a pooled
connection keeps session state: the tenant is ``set_config(..., true)``, other settings are
``SET LOCAL``, cursors live in transactions, LISTEN and the migrations' advisory lock use
connections of their own. asyncpg still rolls back a transaction left open on release.
``tests/db/test_pool_release.py`` proves that no tenant context survives a release and fails
on code that would set session state; ``session_reset=True`` restores asyncpg's reset.

Connections go to tenants fairly. asyncpg hands a busy pool's connections out first come,
first served, so with one tenant's flood in flight another tenant's every query would wait
behind the flood's. A pool made here carries a strict ``FairGate`` of its size:
``tenant_transaction`` takes a place before a connection, and a freed place goes to the
waiting tenant holding fewest. A tenant alone sees plain first come, first served.
``AI_AGENTS_DB_TENANT_FAIR=false`` gives asyncpg's own order.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from core.fair_gate import FairGate
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
    "llm_usage",
    "llm_usage_monthly",
    "ranking_models",
    "ranking_examples",
)


class UnsafeDatabaseRole(RuntimeError):
    """The service's role could read across tenants; refusing to start."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    trace_queries(conn)


class TenantFairPool(asyncpg.Pool):
    """An asyncpg pool with a strict tenant-fair gate of its size (``tenant_transaction``)."""

    __slots__ = ("tenant_gate",)

    def __init__(self, *args: Any, tenant_fair: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant_gate = (
            FairGate(kwargs["max_size"], admit_below_share=False) if tenant_fair else None
        )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pools' release hook: nothing to send (see the module's docstring). asyncpg calls it
    after its own client-side reset, which rolls back an open transaction and drops
    listeners."""


async def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 30.0,
    tenant_fair: bool = True,
    session_reset: bool = False,
) -> asyncpg.Pool:
    """``tenant_fair=False``: no gate, asyncpg's first come, first served.
    ``session_reset=True``: asyncpg's reset statement on every release."""
    # asyncpg.create_pool is `return Pool(...)` with these arguments; the subclass adds the gate
    pool = TenantFairPool(
        url,
        tenant_fair=tenant_fair,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=command_timeout,
        server_settings={"application_name": "ai-agents"},
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        setup=None,
        reset=None if session_reset else _keep_session,
        connect=None,
        loop=None,
    )
    return await pool


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, tenant_id: str
) -> AsyncIterator[asyncpg.Connection]:
    if not tenant_id:
        raise ValueError("tenant_id is required for a tenant transaction")
    gate: FairGate | None = getattr(pool, "tenant_gate", None)
    place = gate.place(tenant_id) if gate is not None else contextlib.nullcontext()
    async with place, pool.acquire() as conn, conn.transaction():
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
    """(in use, idle) connections, for the connection gauge."""
    size = pool.get_size()
    idle = pool.get_idle_size()
    return size - idle, idle
