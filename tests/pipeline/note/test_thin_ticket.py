"""Thin tickets ("hi" / "test", "Help" / "pls call me") get a short note that says what is
missing and what to ask — under 80 words, no unrelated tickets or KB articles — through the
real workflow, real PostgreSQL (with history that a search *would* return) and the SDP
simulator over HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from db.repositories.knowledge import upsert_resolved_ticket
from pipeline.dispatch.dispatcher import ClaimedJob
from pipeline.enhancer import Enhancer
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.thin_ticket import THIN_MAX_WORDS, is_thin, thin_ticket_note
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.retrieval.embeddings import WordLlamaEmbedder
from pipeline.retrieval.vector_index import reindex_tenant
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from pipeline.text.ticket_text import html_to_text, plain_text

THIN = [("hi", "test"), ("Help", "pls call me"), ("test", ""), ("urgent!!", "asap please")]
NOT_THIN = [
    ("VPN drops", "every hour since Monday"),
    ("Printer", "offline on floor 3"),
    ("Server slow", "10.0.0.5"),
]


@pytest.mark.parametrize(("subject", "description"), THIN)
def test_thin_tickets_are_recognised(subject: str, description: str) -> None:
    assert is_thin(Ticket(ticket_id="1", subject=subject, description=description), min_chars=15)


@pytest.mark.parametrize(("subject", "description"), NOT_THIN)
def test_tickets_with_a_symptom_are_not_thin(subject: str, description: str) -> None:
    assert not is_thin(
        Ticket(ticket_id="1", subject=subject, description=description), min_chars=15
    )


def test_note_is_short_and_escapes_the_ticket_text() -> None:
    note = thin_ticket_note("e-1", Ticket(ticket_id="1", subject="<script>x</script>hi"))
    assert note.word_count <= THIN_MAX_WORDS
    assert len(plain_text(note.html).split()) == note.word_count
    assert "<script>" not in note.html and "Ask the requester" in note.text


async def _synthesize(
    tenant_id: str, context: TicketContext, settings: TenantSettings
) -> SynthesisResult:
    raise AssertionError("a thin ticket must not reach synthesis")


async def test_thin_ticket_gets_a_short_note_without_unrelated_matches(
    pool, cipher, owner_conn, make_tenant, sdp
) -> None:
    state, url = sdp
    tenant = await make_tenant("thin", sdp_url=url)
    runtime = await load_tenant_runtime(pool, cipher, tenant.tenant_id)
    state.add_portal(tenant.tenant_id, runtime.sdp_api_key)
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        await upsert_resolved_ticket(
            conn,
            tenant_id=tenant.tenant_id,
            ticket_id="R1",
            subject="Please call me back about the test printer",
            description="help",
            resolution="Called back",
            priority=None,
            tags=[],
            resolved_at=None,
        )
    embedder = WordLlamaEmbedder()
    await reindex_tenant(pool, tenant.tenant_id, embedder)
    ticket_id = str(
        state.add_request(tenant.tenant_id, subject="Help", description="pls call me")["id"]
    )
    async with pool.acquire() as conn:
        queued = await enqueue(
            conn,
            tenant_id=tenant.tenant_id,
            ticket_id=ticket_id,
            event="created",
            dedupe_key=uuid.uuid4().hex,
            trace_context=None,
            trace_id=None,
            notify=False,
            payload={
                "ticket": Ticket(
                    ticket_id=ticket_id, subject="Help", description="pls call me"
                ).model_dump(mode="json")
            },
        )
    token = await owner_conn.fetchval(
        """UPDATE enhancements SET status = 'running', attempts = 1, lease_owner = 'test',
               lease_token = gen_random_uuid(), lease_expires_at = now() + interval '5 minutes'
           WHERE id = $1 RETURNING lease_token""",
        queued.id,
    )
    job = ClaimedJob(
        id=str(queued.id),
        tenant_id=tenant.tenant_id,
        ticket_id=ticket_id,
        attempts=1,
        lease_token=str(token),
    )
    gathering = ContextGatherer(pool, embedder=embedder)
    async with httpx.AsyncClient() as http:
        workflow = Enhancer(
            pool,
            load_tenant=lambda t: load_tenant_runtime(pool, cipher, t),
            gather=lambda t, ticket, needs_fetch: gathering.gather(t, ticket),
            synthesize=_synthesize,
            limiter=LocalRateLimits(),
            http=http,
        )
        assert await workflow.run(job) == "completed"

    notes = state.recorded_notes(tenant.tenant_id, ticket_id)
    assert len(notes) == 1
    text = html_to_text(notes[0].description)
    assert len(text.split()) <= THIN_MAX_WORDS, text
    assert "Ask the requester" in text and "R1" not in text and "ticket #" not in text
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        row = await conn.fetchrow(
            "SELECT outcome, note_id, error, context_sources FROM enhancements WHERE id = $1",
            queued.id,
        )
    assert row["outcome"] == "skipped" and row["note_id"] == notes[0].note_id
    assert "too thin" in row["error"]
