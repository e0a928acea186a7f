"""Tenant isolation is enforced by PostgreSQL, proven with hand-written queries as the service
role (FORCE ROW LEVEL SECURITY, NOBYPASSRLS, tenant set per transaction)."""

from __future__ import annotations

import asyncpg
import pytest

from db.pool import TENANT_TABLES, UnsafeDatabaseRole, tenant_transaction, verify_service_role
from db.repositories.llm_usage import record_attempts
from pipeline.models import AttemptUsage


async def _seed(pool: asyncpg.Pool, tenant_id: str) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        enh = await conn.fetchval(
            """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload)
               VALUES ($1, 'T1', $2, '{}') RETURNING id""",
            tenant_id,
            f"k-{tenant_id}",
        )
        await conn.execute(
            """INSERT INTO enhancement_feedback
                   (tenant_id, enhancement_id, ticket_id, feedback_type)
               VALUES ($1, $2, 'T1', 'thumbs_up')""",
            tenant_id,
            enh,
        )
        await conn.execute(
            "INSERT INTO ticket_history (tenant_id, ticket_id, subject) VALUES ($1, 'R1', 'vpn')",
            tenant_id,
        )
        await conn.execute(
            "INSERT INTO kb_documents (tenant_id, doc_id, title, body) VALUES ($1, 'd1', 't', 'b')",
            tenant_id,
        )
        await conn.execute(
            "INSERT INTO assets (tenant_id, network, hostname) VALUES ($1, '10.0.0.5', 'h')",
            tenant_id,
        )
        await conn.execute(
            """INSERT INTO ticket_embeddings
                   (tenant_id, ticket_id, model, dimensions, content_hash, embedding)
               VALUES ($1, 'R1', 'm', 2, 'h', '{0.6,0.8}')""",
            tenant_id,
        )
        await conn.execute(
            """INSERT INTO kb_chunks (tenant_id, doc_id, chunk_no, chunk_text, model,
                   dimensions, content_hash, embedding)
               VALUES ($1, 'd1', 0, 'b', 'm', 2, 'h', '{0.6,0.8}')""",
            tenant_id,
        )
        await record_attempts(
            conn, tenant_id, enh, [AttemptUsage(model="m", outcome="ok", cost_usd=0.01)]
        )
        await conn.execute(
            "INSERT INTO ranking_models (tenant_id, examples, model) VALUES ($1, 0, '{}')",
            tenant_id,
        )
        await conn.execute(
            """INSERT INTO ranking_examples (tenant_id, enhancement_id, candidate_id, rank, shown,
                   probability, features, feature_names)
               VALUES ($1, $2, 'R1', 1, true, 0.5, '{0.1}', '{fused}')""",
            tenant_id,
            enh,
        )
    await pool.execute(
        "SELECT app_write_audit($1, 'test', 'seed', NULL, 'success', '{}')", tenant_id
    )
    # the deployment's model (no tenant): no tenant sees it, only app_deployment_ranking_model
    await pool.execute("SELECT app_store_deployment_ranking_model(0, '{}', '{}')")


async def test_service_role_sees_only_its_tenant_in_every_table(pool, make_tenant) -> None:
    a = (await make_tenant("iso-a")).tenant_id
    b = (await make_tenant("iso-b")).tenant_id
    await _seed(pool, a)
    await _seed(pool, b)
    for table in TENANT_TABLES:
        column = "id" if table == "tenants" else "tenant_id"
        async with tenant_transaction(pool, a) as conn:
            rows = await conn.fetch(f"SELECT * FROM {table}")  # no WHERE clause on purpose
        seen = {r[column] for r in rows}
        assert seen == {a}, f"{table}: tenant {a} saw {seen}"


async def test_no_tenant_set_means_no_rows(pool, make_tenant) -> None:
    await _seed(pool, (await make_tenant("iso-c")).tenant_id)
    async with pool.acquire() as conn:
        for table in TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_writing_another_tenants_row_fails(pool, make_tenant) -> None:
    a = (await make_tenant("iso-d")).tenant_id
    b = (await make_tenant("iso-e")).tenant_id
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(pool, a) as conn:
            await conn.execute(
                "INSERT INTO ticket_history (tenant_id, ticket_id) VALUES ($1, 'X')", b
            )
    # updates and deletes of B's rows silently match nothing
    await _seed(pool, b)
    async with tenant_transaction(pool, a) as conn:
        assert await conn.execute("UPDATE ticket_history SET subject = 'x'") == "UPDATE 0"
        assert await conn.execute("DELETE FROM assets") == "DELETE 0"
        assert (
            await conn.execute("UPDATE tenants SET name = 'pwned' WHERE id = $1", b) == "UPDATE 0"
        )


async def test_pooled_connection_carries_no_tenant_into_next_transaction(database) -> None:
    from db.pool import create_pool

    single = await create_pool(database.service_url, min_size=1, max_size=1)
    try:
        async with tenant_transaction(single, "someone") as conn:
            first_pid = conn.get_server_pid()
            assert (
                await conn.fetchval("SELECT current_setting('app.current_tenant_id', true)")
                == "someone"
            )
        async with single.acquire() as conn:
            assert conn.get_server_pid() == first_pid  # the very same connection
            leftover = await conn.fetchval("SELECT current_setting('app.current_tenant_id', true)")
            assert leftover in (None, "")
    finally:
        await single.close()


async def test_service_role_is_restricted(pool) -> None:
    await verify_service_role(pool)  # does not raise
    async with pool.acquire() as conn:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert role["rolsuper"] is False and role["rolbypassrls"] is False
        owned = await conn.fetchval(
            """SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
               WHERE r.rolname = current_user"""
        )
        assert owned == 0
        for table in TENANT_TABLES:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE enhancements NO FORCE ROW LEVEL SECURITY")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE postgres")


async def test_rls_is_forced_on_every_tenant_table(owner_conn) -> None:
    rows = await owner_conn.fetch(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY($1)",
        list(TENANT_TABLES),
    )
    assert len(rows) == len(TENANT_TABLES)
    assert all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in rows)


async def test_unsafe_roles_are_refused(database, owner_conn) -> None:
    from db.pool import create_pool

    superuser_pool = await create_pool(database.owner_url, min_size=1, max_size=1)
    try:
        with pytest.raises(UnsafeDatabaseRole, match="superuser"):
            await verify_service_role(superuser_pool)
    finally:
        await superuser_pool.close()
    await owner_conn.execute("DROP ROLE IF EXISTS bypasser")
    await owner_conn.execute("CREATE ROLE bypasser LOGIN BYPASSRLS")
    url = database.service_url.replace("ai_agents_app", "bypasser")
    bypass_pool = await create_pool(url, min_size=1, max_size=1)
    try:
        with pytest.raises(UnsafeDatabaseRole, match="BYPASSRLS"):
            await verify_service_role(bypass_pool)
    finally:
        await bypass_pool.close()
    await owner_conn.execute("DROP ROLE IF EXISTS tableowner")
    await owner_conn.execute("CREATE ROLE tableowner LOGIN")
    await owner_conn.execute("CREATE TABLE IF NOT EXISTS scratch_owned (x int)")
    await owner_conn.execute("ALTER TABLE assets OWNER TO tableowner")
    try:
        owner_pool = await create_pool(
            database.service_url.replace("ai_agents_app", "tableowner"), min_size=1, max_size=1
        )
        try:
            with pytest.raises(UnsafeDatabaseRole, match="owns tenant tables"):
                await verify_service_role(owner_pool)
        finally:
            await owner_pool.close()
    finally:
        await owner_conn.execute("ALTER TABLE assets OWNER TO postgres")
        await owner_conn.execute("DROP TABLE scratch_owned")
