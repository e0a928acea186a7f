"""A pooled connection goes back to the pool without asyncpg's reset statement, and still no
tenant context survives a release: the tenant is transaction-local, so the next holder of the
same connection (the same server process) sees no tenant and, under RLS, no tenant's rows.

The detector is shown to work (a session-level setting does survive a release without the
reset), and the code is scanned for anything that would set session state on a pooled
connection, since that is what the lean release relies on."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from db.pool import create_pool, tenant_transaction
from db.repositories.enhancements import enqueue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def one_connection(database) -> AsyncIterator[asyncpg.Pool]:
    """A pool of exactly one connection, so every acquire gets the connection just released."""
    pool = await create_pool(database.service_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def _seed(pool: asyncpg.Pool, tenant_id: str) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        await conn.execute(
            "INSERT INTO ticket_history (tenant_id, ticket_id, subject) VALUES ($1, 'R1', 'x')",
            tenant_id,
        )


async def _after_release(pool: asyncpg.Pool) -> tuple[int, str, int, int]:
    """(backend pid, tenant setting, rows of ticket_history visible, rows of enhancements)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT pg_backend_pid() AS pid,
                      coalesce(current_setting('app.current_tenant_id', true), '') AS tenant,
                      (SELECT count(*) FROM ticket_history) AS history,
                      (SELECT count(*) FROM enhancements) AS jobs"""
        )
    return row["pid"], row["tenant"], row["history"], row["jobs"]


async def _pid(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT pg_backend_pid()"))


@pytest.mark.parametrize("session_reset", [False, True])
async def test_the_pool_sends_no_reset_statement_on_release(database, session_reset):
    """The round trip this saves on every release; with ``session_reset=True`` asyncpg's own
    reset is sent (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``)."""
    pool = await create_pool(
        database.service_url, min_size=1, max_size=1, session_reset=session_reset
    )
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(" ".join(str(record.query).split())))
            await conn.fetchval("SELECT 1")
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 2")
    finally:
        await pool.close()
    if session_reset:
        assert sent[0] == "SELECT 1" and "RESET ALL;" in sent[1] and sent[2] == "SELECT 2"
    else:
        assert sent == ["SELECT 1", "SELECT 2"]


async def test_no_tenant_context_survives_a_tenant_transaction(one_connection, make_tenant):
    tenant = (await make_tenant("rel")).tenant_id
    await _seed(one_connection, tenant)
    pid = await _pid(one_connection)
    async with tenant_transaction(one_connection, tenant) as conn:
        assert await conn.fetchval("SELECT count(*) FROM ticket_history") == 1
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid
    assert await _after_release(one_connection) == (pid, "", 0, 0)


async def test_no_tenant_context_survives_the_webhooks_enqueue(one_connection, make_tenant):
    """The webhook's one statement sets the tenant itself, outside any transaction of ours."""
    tenant = (await make_tenant("rel")).tenant_id
    pid = await _pid(one_connection)
    async with one_connection.acquire() as conn:
        queued = await enqueue(
            conn,
            tenant_id=tenant,
            ticket_id="42",
            event="created",
            dedupe_key="k-release",
            payload={},
            trace_context=None,
            trace_id=None,
        )
        assert queued.created
    assert await _after_release(one_connection) == (pid, "", 0, 0)


async def test_no_tenant_context_survives_a_failed_transaction(one_connection, make_tenant):
    tenant = (await make_tenant("rel")).tenant_id
    await _seed(one_connection, tenant)
    pid = await _pid(one_connection)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with tenant_transaction(one_connection, tenant) as conn:
            await _insert_twice(conn, tenant)
    with pytest.raises(RuntimeError):
        async with tenant_transaction(one_connection, tenant) as conn:
            await conn.fetchval("SELECT 1")
            raise RuntimeError("the caller fails inside the transaction")
    assert await _after_release(one_connection) == (pid, "", 0, 0)


async def _insert_twice(conn: asyncpg.Connection, tenant: str) -> None:
    for _ in range(2):
        await conn.execute(
            "INSERT INTO ticket_history (tenant_id, ticket_id, subject) VALUES ($1, 'R2', 'y')",
            tenant,
        )


async def test_no_tenant_context_survives_a_cancelled_query(one_connection, make_tenant):
    tenant = (await make_tenant("rel")).tenant_id
    await _seed(one_connection, tenant)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2), tenant_transaction(one_connection, tenant) as conn:
            await conn.execute("SELECT pg_sleep(5)")
    _, setting, history, jobs = await _after_release(one_connection)
    assert (setting, history, jobs) == ("", 0, 0)


async def test_a_session_setting_would_survive_so_none_may_be_made(database):
    """What the lean release relies on, shown both ways: a session-level setting (which no
    code of ours makes, see the scan below) outlives the release without asyncpg's reset, and
    not with it. Also the proof that the checks above could fail."""
    for session_reset, survives in ((False, "leaked"), (True, "")):
        pool = await create_pool(
            database.service_url, min_size=1, max_size=1, session_reset=session_reset
        )
        try:
            async with pool.acquire() as conn:
                await conn.execute("SELECT set_config('app.current_tenant_id', 'leaked', false)")
            _, setting, _, _ = await _after_release(pool)
            assert setting == survives
        finally:
            await pool.close()


# What would keep session state on a pooled connection: a setting made for the session, a
# session-level advisory lock, LISTEN, a cursor WITH HOLD, a prepared SQL statement or a
# temporary table. Statements that begin with SET must be SET LOCAL. SQL keywords are matched in
# capitals, as the code writes them (prose such as "Set up" is not SQL).
_SESSION_STATE = re.compile(
    r"set_config\([^)]*,\s*(false|\$\d+)\s*\)"
    r"|pg_advisory_lock\(|pg_try_advisory_lock\("
    r"|[\"']\s*LISTEN\s+\w+\s*[\"';]|WITH\s+HOLD|[\"']\s*PREPARE\s|CREATE\s+TEMP"
    r"|[\"']\s*SET\s+(?!LOCAL\b)",  # SQL keywords in capitals, as the code writes them
)
# Connections of their own, never a pool's: the migrations' lock (``asyncpg.connect``).
_OWN_CONNECTIONS = {"db/migrate.py"}
_PACKAGES = ("core", "db", "pipeline", "serve_app", "actors", "local_stack", "cli", "scripts")


def test_no_code_sets_session_state_on_a_pooled_connection():
    found = []
    for package in _PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix not in (".py", ".sql"):
                continue
            relative = path.relative_to(ROOT).as_posix()
            if relative in _OWN_CONNECTIONS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _SESSION_STATE.search(line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_scan_finds_what_it_looks_for():
    for line in (
        "await conn.execute(\"SELECT set_config('app.current_tenant_id', $1, false)\")",
        "await conn.execute('SET statement_timeout = 5')",
        'await conn.execute("SELECT pg_advisory_lock($1)", key)',
        'await conn.execute("LISTEN jobs")',
        "CREATE TEMP TABLE t (x int)",
    ):
        assert _SESSION_STATE.search(line), line
    for line in (
        "await conn.execute(\"SELECT set_config('app.current_tenant_id', $1, true)\")",
        'await conn.execute(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")',
        "UPDATE enhancements SET status = 'queued'",
    ):
        assert not _SESSION_STATE.search(line), line
