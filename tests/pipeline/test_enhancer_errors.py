"""The Enhancer's error ladder, without Ray: real PostgreSQL (service role), the real context
gathering, the SDP simulator and the LLM simulator over real HTTP, the real Synthesizer.

- SDP trouble that can pass (outage, throttling) puts the job back with exponential backoff,
  until the job is out of attempts; then it ends `failed` with the same reason.
- SDP refusing for good (request closed, request gone) fails the job at once, attempts left.
- The LLM being down or refusing never fails a job: the note is written from the context alone.
- Anything unexpected is retried; a tenant deleted mid-flight fails the job; a job whose lease
  was taken over is left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from db.pool import tenant_transaction
from pipeline.dispatch.dispatcher import retry_delay_s
from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.llm.synthesizer import Synthesizer
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from pipeline.text.redaction import redact_pii
from simulators.llm import LLMSimulatorState
from simulators.llm import create_app as create_llm_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread
from tests.workflow_runner import claimed_job, context_only

TICKET = {
    "subject": "Outlook cannot reach the Exchange server",
    "description": "Since this morning Outlook on every laptop in accounting says it cannot "
    "connect to the Exchange server; webmail still works.",
}
LLM_KEY = "sk-or-v1-enhancer-errors"
MODEL = "openai/gpt-4o-mini"
RETRY_BASE_S = 7.0


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[LLMSimulatorState, str]]:
    state = LLMSimulatorState(api_keys=[LLM_KEY])
    with run_in_thread(create_llm_app(state), graceful_shutdown_s=0.2) as server:
        yield state, f"{server.url}/api/v1"


class Rig:
    """One tenant on the SDP simulator and an Enhancer wired as the deployment wires it, with
    the SDP client making one attempt per call (the ladder under test is the job's)."""

    def __init__(self, pool: asyncpg.Pool, owner_conn: asyncpg.Connection, sdp, tenant_id: str):
        self.pool, self.owner_conn, self.tenant_id = pool, owner_conn, tenant_id
        self.sdp_state: SimulatorState = sdp[0]

    async def job(self, *, attempts: int = 1, max_attempts: int = 5, **request: Any):
        ticket_id = str(self.sdp_state.add_request(self.tenant_id, **TICKET, **request)["id"])
        return await claimed_job(
            self.pool,
            self.owner_conn,
            self.tenant_id,
            ticket_id,
            TICKET,
            attempts=attempts,
            max_attempts=max_attempts,
        )

    async def row(self, job_id: str) -> asyncpg.Record:
        async with tenant_transaction(self.pool, self.tenant_id) as conn:
            return await conn.fetchrow(
                "SELECT status, outcome, error, attempts, note_id, not_before, now() AS db_now "
                "FROM enhancements WHERE id = $1",
                uuid.UUID(job_id),
            )

    def notes(self, ticket_id: str) -> list[Any]:
        return self.sdp_state.recorded_notes(self.tenant_id, ticket_id)


@pytest.fixture
async def rig(pool, cipher, owner_conn, make_tenant, sdp) -> AsyncIterator[Rig]:
    state, url = sdp
    tenant = await make_tenant("ladder", sdp_url=url)
    runtime = await load_tenant_runtime(pool, cipher, tenant.tenant_id)
    state.add_portal(tenant.tenant_id, runtime.sdp_api_key)
    yield Rig(pool, owner_conn, sdp, tenant.tenant_id)


def _delay_s(row: asyncpg.Record) -> float:
    not_before: datetime = row["not_before"]
    return (not_before - row["db_now"]).total_seconds()


async def _run(
    pool: asyncpg.Pool,
    cipher,  # noqa: ANN001
    job,  # noqa: ANN001
    *,
    synthesize=context_only,  # noqa: ANN001
    gather=None,  # noqa: ANN001
    load_tenant=None,  # noqa: ANN001
) -> str:
    async def gather_context(tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        return await ContextGatherer(pool).gather(tenant_id, ticket)

    async with httpx.AsyncClient() as http:
        enhancer = Enhancer(
            pool,
            load_tenant=load_tenant or (lambda t: load_tenant_runtime(pool, cipher, t)),
            gather=gather or gather_context,
            synthesize=synthesize,
            limiter=LocalRateLimits(),
            http=http,
            config=EnhancerConfig(retry_base_s=RETRY_BASE_S, sdp_max_attempts=1),
        )
        return await enhancer.run(job)


@pytest.mark.parametrize(
    "faults",
    [{"outage": "503"}, {"http_429_next": 100}],
    ids=["outage", "throttled"],
)
async def test_passing_sdp_trouble_is_retried_with_backoff_until_attempts_run_out(
    pool, cipher, rig: Rig, faults
) -> None:
    rig.sdp_state.set_faults(rig.tenant_id, **faults)
    try:
        for attempts, expected_delay in ((1, RETRY_BASE_S), (3, 4 * RETRY_BASE_S)):
            job = await rig.job(attempts=attempts)
            assert await _run(pool, cipher, job) == "queued"
            row = await rig.row(job.id)
            assert row["status"] == "queued" and row["note_id"] is None
            assert row["error"].startswith("ServiceDesk Plus unavailable:"), row["error"]
            assert expected_delay == retry_delay_s(attempts, RETRY_BASE_S)
            assert expected_delay - 1.0 <= _delay_s(row) <= expected_delay + 0.5

        last = await rig.job(attempts=5, max_attempts=5)  # the same trouble, no attempt left
        assert await _run(pool, cipher, last) == "failed"
        row = await rig.row(last.id)
        assert row["status"] == "failed"
        assert row["error"].startswith("ServiceDesk Plus unavailable:")
        assert rig.notes(last.ticket_id) == []
    finally:
        rig.sdp_state.set_faults(rig.tenant_id)


@pytest.mark.parametrize(
    ("request_flags", "reason"),
    [
        ({"reject_notes_reason": "Request is closed"}, "Request is closed"),
        ({"deleted": True}, ""),
    ],
    ids=["closed", "deleted"],
)
async def test_sdp_refusing_for_good_fails_the_job_at_once(
    pool, cipher, rig: Rig, request_flags, reason
) -> None:
    job = await rig.job(attempts=1, **request_flags)
    assert await _run(pool, cipher, job) == "failed"
    row = await rig.row(job.id)
    assert row["status"] == "failed" and row["attempts"] == 1  # four attempts were left
    assert row["error"].startswith("ServiceDesk Plus refused:"), row["error"]
    assert reason in row["error"]
    assert rig.notes(job.ticket_id) == []


@pytest.mark.parametrize(
    ("fault", "reason", "llm_calls"),
    [
        ({"kind": "server_error", "status": 503, "count": None}, "LLM unavailable:", 2),
        ({"kind": "no_credits", "count": None}, "LLM rejected:", 1),  # 402 is never retried
    ],
    ids=["llm-down", "llm-out-of-credits"],
)
async def test_llm_trouble_still_writes_acontext_only_note(
    pool, cipher, rig: Rig, llm, fault, reason, llm_calls
) -> None:
    state, base_url = llm
    state.reset()
    state.add_fault(**fault)
    synthesizer = Synthesizer(
        base_url=base_url,
        api_key=LLM_KEY,
        models=[MODEL],
        timeout_s=2.0,
        deadline_s=10.0,
        max_attempts=2,
        backoff_base_s=0.02,
    )

    async def synthesize(
        tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult:
        return await synthesizer.synthesize(context, redact=True, redactor=redact_pii)

    try:
        job = await rig.job()
        assert await _run(pool, cipher, job, synthesize=synthesize) == "completed"
    finally:
        await synthesizer.close()
    assert state.request_count == llm_calls  # the LLM was really asked, as often as allowed
    row = await rig.row(job.id)
    assert (row["status"], row["outcome"]) == ("completed", "context_only")
    assert row["error"].startswith(reason), row["error"]
    [note] = rig.notes(job.ticket_id)
    assert row["note_id"] == note.note_id


async def test_an_unexpected_error_is_retried_and_keeps_its_reason(pool, cipher, rig: Rig) -> None:
    async def broken(tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        raise RuntimeError("context pool unreachable")

    job = await rig.job(attempts=2)
    assert await _run(pool, cipher, job, gather=broken) == "queued"
    row = await rig.row(job.id)
    assert row["error"] == "RuntimeError: context pool unreachable"
    assert 2 * RETRY_BASE_S - 1.0 <= _delay_s(row) <= 2 * RETRY_BASE_S + 0.5


async def test_a_tenant_deleted_mid_flight_fails_the_job(pool, cipher, rig: Rig) -> None:
    async def gone(tenant_id: str) -> None:
        return None

    job = await rig.job()
    assert await _run(pool, cipher, job, load_tenant=gone) == "failed"
    row = await rig.row(job.id)
    assert (row["status"], row["error"]) == ("failed", "tenant no longer exists")


async def test_a_job_whose_lease_was_taken_over_is_left_alone(pool, cipher, rig: Rig) -> None:
    job = await rig.job()
    stale = type(job)(**{**job.__dict__, "lease_token": str(uuid.uuid4())})
    assert await _run(pool, cipher, stale) == "lease_lost"
    row = await rig.row(job.id)
    assert row["status"] == "running"  # still the real holder's
    assert rig.notes(job.ticket_id) == []
