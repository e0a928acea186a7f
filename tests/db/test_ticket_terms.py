"""`ticket_terms` (migration 0010): each resolved ticket's lexemes, kept in step with
`ticket_history` by a trigger, so similar-ticket full-text search can use a B-tree index under
row-level security. Real embedded PostgreSQL, the service role inside tenant transactions."""

from __future__ import annotations

import pytest

from db.pool import tenant_transaction
from db.repositories.knowledge import search_similar_tickets, upsert_resolved_ticket


async def _upsert(conn, tenant: str, ticket_id: str, subject: str, description: str) -> None:
    await upsert_resolved_ticket(
        conn,
        tenant_id=tenant,
        ticket_id=ticket_id,
        subject=subject,
        description=description,
        resolution="Raised the dead peer detection interval.",
        priority=None,
        tags=[],
        resolved_at=None,
    )


async def _terms(conn, ticket_id: str) -> dict[str, float]:
    rows = await conn.fetch(
        "SELECT lexeme, weight FROM ticket_terms WHERE ticket_id = $1", ticket_id
    )
    return {r["lexeme"]: r["weight"] for r in rows}


async def test_terms_follow_inserts_edits_and_deletes(pool, make_tenant) -> None:
    tenant = (await make_tenant("terms")).tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        await _upsert(conn, tenant, "T1", "VPN tunnel drops", "Every hour the tunnel resets.")
        terms = await _terms(conn, "T1")
        # the best field wins: subject 1.0, description 0.4, resolution 0.2
        assert terms["vpn"] == 1.0 and terms["tunnel"] == 1.0
        assert terms["hour"] == pytest.approx(0.4) and terms["peer"] == pytest.approx(0.2)
        await _upsert(conn, tenant, "T1", "VPN tunnel drops", "Since the firmware update.")
        edited = await _terms(conn, "T1")
        assert "hour" not in edited and "firmwar" in edited
        await conn.execute("DELETE FROM ticket_history WHERE ticket_id = 'T1'")
        assert await _terms(conn, "T1") == {}


async def test_search_reads_the_term_index_under_row_level_security(
    pool, make_tenant, owner_conn
) -> None:
    tenant = (await make_tenant("terms-ix")).tenant_id
    other = (await make_tenant("terms-ix-other")).tenant_id
    for owner in (tenant, other):
        async with tenant_transaction(pool, owner) as conn:
            for n in range(30):
                await _upsert(conn, owner, f"P{n}", f"Printer jam {n}", "Tray two jams.")
            await _upsert(conn, owner, "V1", "VPN tunnel drops", "Every hour the tunnel resets.")
    await owner_conn.execute("ANALYZE ticket_terms")
    async with tenant_transaction(pool, tenant) as conn:
        found = await search_similar_tickets(conn, "vpn | tunnel", exclude_ticket="", limit=5)
        assert [r["ticket_id"] for r in found] == ["V1"]
        # a small table: make the planner show an index scan, then see what it may use in it
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT ticket_id FROM ticket_terms "
                "WHERE lexeme = ANY (tsvector_to_array(to_tsvector('english', $1)))",
                "vpn | tunnel",
            )
        )
    # the lexeme condition is an index condition next to the policy's tenant condition: text
    # equality is leakproof, so row-level security lets the index apply it
    assert "ticket_terms_pkey" in plan and "lexeme = ANY" in plan.split("Filter")[0], plan
