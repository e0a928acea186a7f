"""The pipeline under LLM and SDP trouble: retries, context-only notes, failures with reasons,
and never a job stuck in `running`."""

from __future__ import annotations

import asyncio
import time

import pytest

from local_stack.results import wait_until_idle

pytestmark = pytest.mark.ray


@pytest.fixture
async def quiet(system, owner_conn):
    """Start from an idle system with healthy simulators; leave it that way."""
    await wait_until_idle(owner_conn)
    system.llm.clear_faults()
    system.llm.set_latency(0.05)
    await asyncio.sleep(2.5)  # any open breaker from earlier tests has recovered
    yield
    system.llm.clear_faults()
    system.llm.set_latency(0.05)
    await wait_until_idle(owner_conn)


async def _nothing_running(owner_conn, tenant_id: str) -> None:
    running = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE tenant_id = $1 AND status = 'running'", tenant_id
    )
    assert running == 0


async def test_llm_429_is_retried_and_succeeds(system, quiet, owner_conn) -> None:
    tenant = await system.tenant("llm429")
    ticket = tenant.add_ticket(subject="Exchange mailbox full", description="Quota exceeded")
    system.llm.clear_requests()
    system.llm.add_fault("rate_limit", count=1, retry_after=1)
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["status"] == "completed" and row["outcome"] == "llm", row
    statuses = [r.status for r in system.llm.requests]
    assert statuses[:2] == [429, 200], statuses
    assert len(tenant.notes(ticket["id"])) == 1
    await _nothing_running(owner_conn, tenant.tenant_id)


async def test_llm_down_gives_context_only_note(system, quiet, owner_conn) -> None:
    tenant = await system.tenant("llmdown")
    ticket = tenant.add_ticket(
        subject="Laptop cannot reach file share", description="Mapped drive S: missing after reboot"
    )
    system.llm.add_fault("server_error", count=None, status=503)
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["status"] == "completed" and row["outcome"] == "context_only", row
    assert "LLM unavailable" in (row["error"] or "")
    notes = tenant.notes(ticket["id"])
    assert len(notes) == 1
    assert "context" in notes[0].description.lower()
    await _nothing_running(owner_conn, tenant.tenant_id)


async def test_llm_no_credits_is_not_retried(system, quiet) -> None:
    tenant = await system.tenant("llm402")
    ticket = tenant.add_ticket(subject="MFA prompt loop", description="Authenticator loops")
    system.llm.clear_requests()
    system.llm.add_fault("no_credits", count=1)
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["outcome"] == "context_only" and "credits" in row["error"].lower(), row
    assert len(system.llm.requests) == 1


async def test_sdp_outage_is_waited_out(system, quiet, owner_conn) -> None:
    tenant = await system.tenant("sdpdown")
    ticket = tenant.add_ticket(subject="Switch port flapping", description="Gi0/12 up/down")
    system.sdp.set_faults(tenant.tenant_id, outage="503")
    enhancement_id = await tenant.send_ticket(ticket)
    deadline = time.monotonic() + 60
    while (await tenant.enhancement(enhancement_id))["attempts"] < 2:
        assert time.monotonic() < deadline, "job was never retried"
        await asyncio.sleep(0.3)
    system.sdp.set_faults(tenant.tenant_id)  # SDP is back
    row = await tenant.wait(enhancement_id)
    assert row["status"] == "completed", row
    assert row["attempts"] >= 2
    assert len(tenant.notes(ticket["id"])) == 1
    await _nothing_running(owner_conn, tenant.tenant_id)


async def test_sdp_rejection_fails_with_its_reason(system, quiet, owner_conn) -> None:
    tenant = await system.tenant("sdprej")
    ticket = tenant.add_ticket(
        subject="Old ticket",
        description="Printer toner low again",
        reject_notes_reason="Request is closed",
    )
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["status"] == "failed", row
    assert "Request is closed" in row["error"]
    assert row["attempts"] == 1
    assert tenant.notes(ticket["id"]) == []
    await _nothing_running(owner_conn, tenant.tenant_id)


async def test_deleted_ticket_fails_not_retried(system, quiet) -> None:
    tenant = await system.tenant("sdpdel")
    ticket = tenant.add_ticket(subject="Gone", description="This ticket was deleted", deleted=True)
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["status"] == "failed" and row["attempts"] == 1, row


async def test_payload_without_description_fetches_the_ticket(system, quiet) -> None:
    tenant = await system.tenant("fetch")
    ticket = tenant.add_ticket(
        subject="Certificate expired on intranet",
        description="Browser shows NET::ERR_CERT_DATE_INVALID for https://intranet",
    )
    response = await tenant.send({"ticket_id": ticket["id"], "subject": ticket["subject"]})
    row = await tenant.wait(response.json()["enhancement_id"])
    assert row["status"] == "completed", row
    sources = {s["name"]: s for s in row["context_sources"]}
    assert sources["sdp_ticket"]["status"] == "ok"
    gets = system.sdp.calls(tenant.tenant_id, "GET", f"/requests/{ticket['id']}")
    assert any(c.path.endswith(f"/requests/{ticket['id']}") for c in gets)


async def test_thin_ticket_gets_a_short_note_asking_for_details(system, quiet) -> None:
    tenant = await system.tenant("thin")
    ticket = tenant.add_ticket(subject="help", description="pls")
    row = await tenant.wait(await tenant.send_ticket(ticket))
    assert row["status"] == "completed" and row["outcome"] == "skipped", row
    assert "too thin" in row["error"]
    notes = tenant.notes(ticket["id"])
    assert len(notes) == 1 and "Ask the requester" in notes[0].description
