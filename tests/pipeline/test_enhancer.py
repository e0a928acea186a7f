"""The enhancement workflow as a plain class (no Ray): real PostgreSQL as the service role,
the real context gathering, and the SDP simulator over HTTP. Focus: write-back is idempotent
without costing an SDP call on a job's first attempt."""

from __future__ import annotations

import uuid

import httpx

from db.pool import tenant_transaction
from pipeline.dispatch.dispatcher import ClaimedJob
from pipeline.enhancer import Enhancer
from pipeline.note.renderer import note_marker
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from tests.workflow_runner import claimed_job, context_only

TICKET = {
    "subject": "VPN drops every few minutes",
    "description": "Since Monday the VPN "
    "client disconnects every few minutes for the whole sales team.",
}


async def test_first_attempt_posts_without_looking_and_a_rerun_finds_its_note(
    pool, cipher, owner_conn, make_tenant, sdp
) -> None:
    state, url = sdp
    tenant = await make_tenant("wf", sdp_url=url)
    runtime = await load_tenant_runtime(pool, cipher, tenant.tenant_id)
    state.add_portal(tenant.tenant_id, runtime.sdp_api_key)
    ticket_id = str(state.add_request(tenant.tenant_id, **TICKET)["id"])
    async with httpx.AsyncClient() as http:
        workflow = Enhancer(
            pool,
            load_tenant=lambda t: load_tenant_runtime(pool, cipher, t),
            gather=lambda t, ticket, needs_fetch: ContextGatherer(pool).gather(t, ticket),
            synthesize=context_only,
            limiter=LocalRateLimits(),
            http=http,
        )

        first = await claimed_job(pool, owner_conn, tenant.tenant_id, ticket_id, TICKET)
        assert await workflow.run(first) == "completed"
        calls = [(c.method, c.path) for c in state.calls(portal=tenant.tenant_id)]
        assert [m for m, _ in calls] == ["POST"], calls  # the note, and nothing else

        # a re-run of the same job (its completion was lost) looks first and posts nothing
        await owner_conn.execute(
            "UPDATE enhancements SET status = 'running', attempts = 2, lease_token = $2 "
            "WHERE id = $1",
            uuid.UUID(first.id),
            uuid.UUID(first.lease_token),
        )
        rerun = ClaimedJob(**{**first.__dict__, "attempts": 2})
        state.clear_calls()
        assert await workflow.run(rerun) == "completed"
        assert [c.method for c in state.calls(portal=tenant.tenant_id)] == ["GET"]

    notes = state.recorded_notes(tenant.tenant_id, ticket_id)
    assert len(notes) == 1 and note_marker(first.id) in notes[0].description
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        row = await conn.fetchrow(
            "SELECT status, outcome, note_id, stage FROM enhancements WHERE id = $1",
            uuid.UUID(first.id),
        )
    assert dict(row) == {
        "status": "completed",
        "outcome": "context_only",
        "note_id": notes[0].note_id,
        "stage": "done",
    }
