"""The Enhancer's tenant-fair stage gate, wired in: real PostgreSQL, the real context gathering
and the SDP simulator over HTTP; only the moment tenant A's context gathering returns is held,
so the test decides who is inside the stages when."""

from __future__ import annotations

import asyncio

import httpx

from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.models import Ticket, TicketContext
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from tests.workflow_runner import claimed_job, context_only

TICKET = {
    "subject": "Printer on floor 3 jams on every duplex job",
    "description": "Since the toner change the floor 3 printer jams whenever a duplex job "
    "is sent; single-sided printing works.",
}


def _enhancer(pool, cipher, http: httpx.AsyncClient, gather, *, places: int) -> Enhancer:  # noqa: ANN001
    return Enhancer(
        pool,
        load_tenant=lambda t: load_tenant_runtime(pool, cipher, t),
        gather=gather,
        synthesize=context_only,
        limiter=LocalRateLimits(),
        http=http,
        config=EnhancerConfig(stage_places=places),
    )


async def test_a_quiet_tenant_passes_a_full_gate_and_the_busy_tenant_queues(
    pool, cipher, owner_conn, make_tenant, sdp
) -> None:
    """One stage place. A's first job holds it (its context gathering is held open); A's
    second job must wait for it, while B's job, below its share, goes through to its note."""
    state, url = sdp
    busy, quiet = await make_tenant("gate-a", sdp_url=url), await make_tenant("gate-b", sdp_url=url)
    ticket_ids = {}
    for tenant in (busy, quiet):
        runtime = await load_tenant_runtime(pool, cipher, tenant.tenant_id)
        state.add_portal(tenant.tenant_id, runtime.sdp_api_key)
        ticket_ids[tenant.tenant_id] = [
            str(state.add_request(tenant.tenant_id, **TICKET)["id"]) for _ in range(2)
        ]
    release_a, a_inside = asyncio.Event(), asyncio.Event()
    gathered: list[str] = []

    async def gather(tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        gathered.append(tenant_id)
        if tenant_id == busy.tenant_id:
            a_inside.set()
            await release_a.wait()
        return await ContextGatherer(pool).gather(tenant_id, ticket)

    async with httpx.AsyncClient() as http:
        enhancer = _enhancer(pool, cipher, http, gather, places=1)
        jobs = {
            tenant.tenant_id: [
                await claimed_job(pool, owner_conn, tenant.tenant_id, ticket_id, TICKET)
                for ticket_id in ticket_ids[tenant.tenant_id]
            ]
            for tenant in (busy, quiet)
        }
        a_first = asyncio.create_task(enhancer.run(jobs[busy.tenant_id][0]))
        async with asyncio.timeout(30):
            await a_inside.wait()
        a_second = asyncio.create_task(enhancer.run(jobs[busy.tenant_id][1]))
        async with asyncio.timeout(30):
            b_status = await enhancer.run(jobs[quiet.tenant_id][0])

        assert b_status == "completed"
        assert gathered.count(busy.tenant_id) == 1  # A's second job is still at the gate
        assert not a_second.done()
        assert [c.method for c in state.calls(portal=quiet.tenant_id)] == ["POST"]

        release_a.set()
        async with asyncio.timeout(30):
            assert await a_first == "completed"
        async with asyncio.timeout(30):
            assert await a_second == "completed"
        assert gathered.count(busy.tenant_id) == 2


async def test_zero_places_turns_the_gate_off(pool, cipher, owner_conn, make_tenant, sdp) -> None:
    """``stage_places=0``: jobs of one tenant do not wait for each other at all."""
    state, url = sdp
    tenant = await make_tenant("gate-off", sdp_url=url)
    runtime = await load_tenant_runtime(pool, cipher, tenant.tenant_id)
    state.add_portal(tenant.tenant_id, runtime.sdp_api_key)
    inside = 0
    peak = 0
    both_in = asyncio.Event()

    async def gather(tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        if inside == 2:
            both_in.set()
        async with asyncio.timeout(30):
            await both_in.wait()
        inside -= 1
        return await ContextGatherer(pool).gather(tenant_id, ticket)

    async with httpx.AsyncClient() as http:
        enhancer = _enhancer(pool, cipher, http, gather, places=0)
        jobs = [
            await claimed_job(
                pool,
                owner_conn,
                tenant.tenant_id,
                str(state.add_request(tenant.tenant_id, **TICKET)["id"]),
                TICKET,
            )
            for _ in range(2)
        ]
        statuses = await asyncio.gather(*(enhancer.run(job) for job in jobs))
    assert statuses == ["completed", "completed"]
    assert peak == 2
