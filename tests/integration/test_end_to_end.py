"""A signed webhook becomes exactly one private note citing the seeded context."""

from __future__ import annotations

import pytest

from db.pool import tenant_transaction
from db.repositories import knowledge

pytestmark = pytest.mark.ray


async def _seed_context(pool, tenant_id: str) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        await knowledge.upsert_resolved_ticket(
            conn,
            tenant_id=tenant_id,
            ticket_id="R-100",
            subject="VPN tunnel drops every hour",
            description="Users on the Cisco AnyConnect VPN disconnected hourly",
            resolution="Raised the IKE rekey lifetime on vpn-gw-01 to 8 hours",
            priority="High",
            tags=["vpn"],
            resolved_at=None,
        )
        await knowledge.upsert_resolved_ticket(
            conn,
            tenant_id=tenant_id,
            ticket_id="R-200",
            subject="Printer offline on floor 3",
            description="HP printer shows offline",
            resolution="Restarted spooler",
            priority="Low",
            tags=["printer"],
            resolved_at=None,
        )
        await knowledge.upsert_kb_document(
            conn,
            tenant_id=tenant_id,
            doc_id="vpn-troubleshooting",
            title="VPN disconnects: troubleshooting guide",
            body="When the VPN tunnel drops, check the IKE rekey lifetime and DPD timers.",
            url=None,
            source_path=None,
        )
        await knowledge.upsert_asset(
            conn,
            tenant_id=tenant_id,
            network="10.20.0.15",
            hostname="vpn-gw-01",
            role="VPN gateway",
            owner="NetOps",
            location="DC1",
        )
        await knowledge.upsert_asset(
            conn,
            tenant_id=tenant_id,
            network="10.20.0.0/24",
            hostname=None,
            role="DMZ subnet",
            owner="NetOps",
            location="DC1",
        )


async def test_webhook_becomes_one_private_note_citing_context(system, pool) -> None:
    tenant = await system.tenant("e2e")
    await _seed_context(pool, tenant.tenant_id)
    ticket = tenant.add_ticket(
        subject="VPN keeps dropping for remote staff",
        description="<p>Since Monday the VPN tunnel drops every hour. Gateway 10.20.0.15 "
        "and client 10.20.0.77 affected.</p>",
    )
    enhancement_id = await tenant.send_ticket(ticket)
    row = await tenant.wait(enhancement_id)
    assert row["status"] == "completed", row
    assert row["outcome"] == "llm"
    assert row["model"] == "openai/gpt-4o-mini"
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["cost_usd"] > 0
    assert {"context", "synthesis", "writeback", "total"} <= set(row["stage_timings"])
    assert row["trace_id"] and len(row["trace_id"]) == 32

    notes = tenant.notes(ticket["id"])
    assert len(notes) == 1
    note = notes[0]
    assert note.show_to_requester is False
    assert row["note_id"] == note.note_id
    text = note.description
    assert "R-100" in text  # the similar ticket
    assert "VPN disconnects: troubleshooting guide" in text  # the KB article
    assert "vpn-gw-01" in text and "10.20.0.15" in text  # host match
    assert "10.20.0.77" in text  # subnet match
    assert enhancement_id in text  # marker footer
    assert "<script" not in text.lower()
