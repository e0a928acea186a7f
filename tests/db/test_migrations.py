"""Migrations: ordered, recorded, idempotent, on embedded and external PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from db.embedded import start_embedded
from db.migrate import load_migrations, migrate

SCHEMA_FINGERPRINT = """
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'table ' || table_name || '.' || column_name || ' ' || data_type AS x
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'policy ' || tablename || ' ' || policyname FROM pg_policies
  UNION ALL SELECT 'func ' || p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'grant ' || grantee || ' ' || table_name || ' ' || privilege_type
    FROM information_schema.role_table_grants WHERE table_schema = 'public'
) s
"""


async def _fingerprint(owner_url: str) -> str:
    conn = await asyncpg.connect(owner_url)
    try:
        return await conn.fetchval(SCHEMA_FINGERPRINT)
    finally:
        await conn.close()


async def _assert_idempotent(owner_url: str, service_url: str) -> None:
    await migrate(owner_url, service_url)
    before = await _fingerprint(owner_url)
    assert await migrate(owner_url, service_url) == []
    assert await _fingerprint(owner_url) == before
    conn = await asyncpg.connect(owner_url)
    try:
        versions = [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        ]
    finally:
        await conn.close()
    assert versions == [m.version for m in load_migrations()]


async def test_migrations_are_idempotent_on_a_fresh_embedded_database() -> None:
    path = Path(tempfile.mkdtemp(prefix="aam-", dir="/tmp"))
    try:
        db = start_embedded(path, stop_on_exit=True)
        await _assert_idempotent(db.owner_url, db.service_url)
        # the service role can log in and is restricted
        conn = await asyncpg.connect(db.service_url)
        try:
            assert (
                await conn.fetchval(
                    "SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user"
                )
                is False
            )
        finally:
            await conn.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_migrations_on_external_postgresql() -> None:
    """CI starts Debian's PostgreSQL and sets the URL (see .ci/run); locally it may be absent."""
    owner_url = os.environ.get("AI_AGENTS_TEST_EXTERNAL_OWNER_URL")
    if not owner_url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide AI_AGENTS_TEST_EXTERNAL_OWNER_URL (see .ci/run)")
        pytest.skip("no external PostgreSQL configured (AI_AGENTS_TEST_EXTERNAL_OWNER_URL)")
    conn = await asyncpg.connect(owner_url)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    assert int(version) >= 140000
    service_url = os.environ["AI_AGENTS_TEST_EXTERNAL_SERVICE_URL"]
    await _assert_idempotent(owner_url, service_url)
    svc = await asyncpg.connect(service_url)
    try:
        assert await svc.fetchval("SELECT count(*) FROM enhancements") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await svc.execute("ALTER TABLE enhancements DISABLE ROW LEVEL SECURITY")
    finally:
        await svc.close()
