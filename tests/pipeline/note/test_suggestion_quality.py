"""Suggestion hits: a resolved ticket (webhook or history import) is compared with what its
note proposed, and the verdict reaches the enhancements API, feedback stats and /metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from core.settings import Settings
from db.pool import tenant_transaction
from db.repositories.knowledge import upsert_resolved_ticket
from pipeline.note.suggestion_quality import HIT_THRESHOLD, LexemeOverlap, judge
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import webhook_headers
from simulators.serving import run_in_thread
from tests.workflow_runner import enhance_once

HISTORY = {
    "901": (
        "VPN disconnects every few minutes",
        "Dead peer detection on vpn-gw-01 was set to "
        "10 s and the home router drops idle UDP sessions. Raised the DPD interval to 60 s.",
    ),
    "902": (
        "VPN keeps dropping the connection",
        "The home router fragmented the tunnel "
        "packets. Lowered the tunnel MTU to 1380 in the VPN profile and pushed the profile.",
    ),
    "903": (
        "Remote VPN session drops",
        "Outdated VPN client build with a known reconnect bug. "
        "Upgraded the client to the approved version.",
    ),
}
TICKET = {
    "subject": "VPN drops every few minutes",
    "description": "The VPN client disconnects every few minutes from home.",
}
MTU_FIX = (
    "Home router fragmented the tunnel packets; lowered the tunnel MTU to 1380 in the "
    "VPN profile for this user and pushed it."
)
UNRELATED = "Replaced the toner cartridge in the second-floor printer."


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[SimulatorState, str]]:
    state = SimulatorState()
    with run_in_thread(create_sdp_app(state)) as server:
        yield state, server.url


METRICS_TOKEN = "met_suggestion-test"


async def _scrape(api: httpx.AsyncClient) -> str:
    """/metrics as Prometheus scrapes it (with the metrics token), checked to be a real scrape
    so that a "not in" assertion cannot pass on an error body."""
    answer = await api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert "ai_agents_queue_depth" in answer.text
    return answer.text


@pytest.fixture(scope="module")
async def api(database, encryption_keys) -> AsyncIterator[httpx.AsyncClient]:
    state = ApiState.from_settings(
        Settings(
            database_url=database.service_url,
            encryption_keys=encryption_keys,
            metrics_token=METRICS_TOKEN,
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_api(state)), base_url="http://api"
    ) as client:
        yield client
    await state.close()


async def test_lexeme_overlap_separates_the_same_fix_from_another_fix(pool) -> None:
    async with pool.acquire() as conn:
        same, other, empty = await LexemeOverlap().scores(
            conn, MTU_FIX, [HISTORY["902"][1], HISTORY["901"][1], ""]
        )
    assert same >= HIT_THRESHOLD > other and empty == 0.0
    proposed = [{"text": HISTORY["901"][1]}, {"text": HISTORY["902"][1]}]
    async with pool.acquire() as conn:
        verdict = await judge(conn, MTU_FIX, proposed)
        miss = await judge(conn, UNRELATED, proposed)
        nothing = await judge(conn, MTU_FIX, [])
    assert (verdict.hit, verdict.rank, verdict.similarity) == (True, 2, same)
    assert (miss.hit, miss.rank) == (False, None) and miss.similarity < HIT_THRESHOLD
    assert (nothing.hit, nothing.rank, nothing.similarity) == (False, None, 0.0)


async def _resolve(api: httpx.AsyncClient, tenant, ticket_id: str, resolution: str) -> dict:
    body = json.dumps(
        {
            "ticket_id": ticket_id,
            "subject": TICKET["subject"],
            "description": TICKET["description"],
            "resolution": resolution,
            "event": "resolved",
        }
    ).encode()
    response = await api.post(
        f"/webhook/servicedesk/{tenant.tenant_id}/resolved",
        content=body,
        headers=webhook_headers(body, "hmac", tenant.webhook_secret),
    )
    assert response.status_code == 202, response.text
    return response.json()


async def test_resolutions_become_hits_and_misses_in_the_api_stats_and_metrics(
    pool, cipher, owner_conn, make_tenant, sdp, api
) -> None:
    tenant = await make_tenant("sq", sdp_url=sdp[1])
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        for ticket_id, (subject, resolution) in HISTORY.items():
            await upsert_resolved_ticket(
                conn,
                tenant_id=tenant.tenant_id,
                ticket_id=ticket_id,
                subject=subject,
                description=subject,
                resolution=resolution,
                priority=None,
                tags=[],
                resolved_at=None,
            )
    enhanced = [
        await enhance_once(pool, cipher, owner_conn, sdp[0], tenant.tenant_id, TICKET)
        for _ in range(5)
    ]

    hit = await _resolve(api, tenant, enhanced[0][1], MTU_FIX)
    assert hit["suggestion_hit"] is True
    row = (await api.get(f"/api/v1/enhancements/{enhanced[0][0]}", headers=auth)).json()
    proposals = await owner_conn.fetchval(
        "SELECT suggestions FROM enhancements WHERE id = $1", uuid.UUID(enhanced[0][0])
    )
    mtu_rank = [p["id"] for p in json.loads(proposals)].index("902") + 1
    assert (row["suggestion_hit"], row["suggestion_rank"]) == (True, mtu_rank)
    assert row["suggestion_similarity"] >= HIT_THRESHOLD

    miss = await _resolve(api, tenant, enhanced[1][1], UNRELATED)
    assert miss["suggestion_hit"] is False
    row = (await api.get(f"/api/v1/enhancements/{enhanced[1][0]}", headers=auth)).json()
    assert (row["suggestion_hit"], row["suggestion_rank"]) == (False, None)
    assert row["suggestion_similarity"] < HIT_THRESHOLD

    never = await _resolve(api, tenant, "77777", MTU_FIX)  # not enhanced by this service
    assert never["suggestion_hit"] is None
    untouched = (await api.get(f"/api/v1/enhancements/{enhanced[4][0]}", headers=auth)).json()
    assert untouched["suggestion_hit"] is None  # resolution not known yet

    for _, ticket_id, _ in enhanced[2:4]:  # the history import path
        async with tenant_transaction(pool, tenant.tenant_id) as conn:
            await store_resolved_ticket(
                conn,
                tenant.tenant_id,
                ResolvedTicket(
                    ticket_id=ticket_id,
                    subject=TICKET["subject"],
                    description="",
                    resolution=HISTORY["901"][1],
                    priority=None,
                    tags=[],
                    resolved_at=None,
                ),
            )
    stats = (await api.get("/api/v1/feedback/stats", headers=auth)).json()["suggestions"]
    assert (stats["checked"], stats["hits"], stats["hit_rate"]) == (4, 3, 0.75)
    metrics = await _scrape(api)
    assert f'ai_agents_suggestion_hit_ratio{{tenant="{tenant.tenant_id}"}}' not in metrics  # < 5

    await _resolve(api, tenant, enhanced[4][1], HISTORY["903"][1])
    metrics = await _scrape(api)
    assert f'ai_agents_suggestion_hit_ratio{{tenant="{tenant.tenant_id}"}} 0.8' in metrics
