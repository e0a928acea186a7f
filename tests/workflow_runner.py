"""Run one enhancement through the real workflow without Ray: real PostgreSQL (service role),
real context gathering, the SDP simulator over HTTP, and a synthesizer given by the test."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from db.repositories.enhancements import enqueue
from pipeline.dispatch.dispatcher import ClaimedJob
from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.feedback_links import FeedbackLinkSigner
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.credential_cipher import CredentialCipher
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from simulators.servicedesk.store import SimulatorState

Synthesize = Callable[[str, TicketContext, TenantSettings], Awaitable[SynthesisResult]]


async def context_only(
    tenant_id: str, context: TicketContext, settings: TenantSettings
) -> SynthesisResult:
    return SynthesisResult(mode="context_only", reason="no LLM in this test")


async def claimed_job(
    pool: asyncpg.Pool,
    owner_conn: asyncpg.Connection,
    tenant_id: str,
    ticket_id: str,
    ticket: dict[str, str],
    *,
    attempts: int = 1,
    max_attempts: int = 5,
) -> ClaimedJob:
    """A queued job for the ticket, then leased as if the dispatcher had claimed it
    ``attempts`` times (set-up only, as the table owner)."""
    async with pool.acquire() as conn:
        queued = await enqueue(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            event="created",
            dedupe_key=uuid.uuid4().hex,
            trace_context=None,
            trace_id=None,
            notify=False,
            max_attempts=max_attempts,
            payload={"ticket": Ticket(ticket_id=ticket_id, **ticket).model_dump(mode="json")},
        )
    lease = await owner_conn.fetchval(
        """UPDATE enhancements SET status = 'running', attempts = $2, lease_owner = 'test',
               lease_token = gen_random_uuid(), lease_expires_at = now() + interval '5 minutes'
           WHERE id = $1 RETURNING lease_token""",
        queued.id,
        attempts,
    )
    return ClaimedJob(
        id=str(queued.id),
        tenant_id=tenant_id,
        ticket_id=ticket_id,
        attempts=attempts,
        lease_token=str(lease),
    )


async def enhance_once(
    pool: asyncpg.Pool,
    cipher: CredentialCipher,
    owner_conn: asyncpg.Connection,
    sdp: SimulatorState,
    tenant_id: str,
    ticket: dict[str, str],
    *,
    encryption_keys: str | None = None,
    public_url: str | None = None,
    synthesize: Synthesize = context_only,
) -> tuple[str, str, str]:
    """Returns (enhancement id, SDP ticket id, the note's HTML as SDP stored it)."""
    runtime = await load_tenant_runtime(pool, cipher, tenant_id)
    if tenant_id not in sdp.portals:
        sdp.add_portal(tenant_id, runtime.sdp_api_key)
    ticket_id = str(sdp.add_request(tenant_id, **ticket)["id"])
    job = await claimed_job(pool, owner_conn, tenant_id, ticket_id, ticket)
    links = FeedbackLinkSigner.from_encryption_keys(encryption_keys) if encryption_keys else None
    async with httpx.AsyncClient() as http:
        workflow = Enhancer(
            pool,
            load_tenant=lambda t: load_tenant_runtime(pool, cipher, t),
            gather=lambda t, tk, needs_fetch: ContextGatherer(pool).gather(t, tk),
            synthesize=synthesize,
            limiter=LocalRateLimits(),
            http=http,
            config=EnhancerConfig(public_url=public_url),
            feedback_links=links,
        )
        assert await workflow.run(job) == "completed"
    [note] = sdp.recorded_notes(tenant_id, ticket_id)
    return job.id, ticket_id, note.description
