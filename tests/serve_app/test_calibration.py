"""The confidence's live calibration, from what notes stated and what their resolutions showed:
the tenant's reliability table and ECE in GET /api/v1/feedback/stats, and per tenant on the
ingress /metrics once 20 notes have an outcome (the dashboard's panels)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from db.pool import tenant_transaction
from serve_app.api import create_api
from serve_app.api_state import ApiState

METRICS_TOKEN = "met_calibration-test"


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


async def _notes(pool, tenant: str, stated: float, outcomes: list[bool]) -> None:
    async with tenant_transaction(pool, tenant) as conn:
        for came_true in outcomes:
            await conn.execute(
                """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload, status,
                       confidence, confidence_outcome, suggestion_checked_at)
                   VALUES ($1, $2, $3, '{}', 'completed', $4, $5, now())""",
                tenant,
                uuid.uuid4().hex[:8],
                uuid.uuid4().hex,
                stated,
                came_true,
            )


async def _metrics(api: httpx.AsyncClient) -> str:
    answer = await api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200 and "ai_agents_queue_depth" in answer.text
    return answer.text


async def test_reliability_table_and_ece_from_live_outcomes(api, pool, make_tenant) -> None:
    tenant = await make_tenant("calib")
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    empty = (await api.get("/api/v1/feedback/stats", headers=auth)).json()["calibration"]
    assert empty == {
        "notes": 0,
        "mean_confidence": None,
        "first_right": None,
        "ece": None,
        "reliability": [],
    }
    # stated 90 %, came true 6 of 10; stated 20 %, came true 2 of 9: overconfident at the top
    await _notes(pool, tenant.tenant_id, 0.9, [True] * 6 + [False] * 4)
    await _notes(pool, tenant.tenant_id, 0.2, [True] * 2 + [False] * 7)
    stats = (await api.get("/api/v1/feedback/stats", headers=auth)).json()["calibration"]
    assert stats["notes"] == 19 and stats["first_right"] == pytest.approx(8 / 19, abs=1e-3)
    assert stats["reliability"] == [
        {"bin": "0.2-0.3", "notes": 9, "stated": 0.2, "observed": pytest.approx(0.2222, abs=1e-4)},
        {"bin": "0.9-1.0", "notes": 10, "stated": 0.9, "observed": 0.6},
    ]
    # 9/19 · 0.0222 + 10/19 · 0.3
    assert stats["ece"] == pytest.approx(9 / 19 * 0.0222 + 10 / 19 * 0.3, abs=1e-3)
    metrics = await _metrics(api)
    assert f'ai_agents_confidence_calibration_error{{tenant="{tenant.tenant_id}"}}' not in metrics

    await _notes(pool, tenant.tenant_id, 0.9, [True])  # the 20th: now on /metrics
    metrics = await _metrics(api)
    error = [
        line
        for line in metrics.splitlines()
        if line.startswith(f'ai_agents_confidence_calibration_error{{tenant="{tenant.tenant_id}"}}')
    ]
    # 9/20 · |0.2 − 2/9| + 11/20 · |0.9 − 7/11|
    expected = 9 / 20 * abs(0.2 - 2 / 9) + 11 / 20 * abs(0.9 - 7 / 11)
    assert len(error) == 1 and float(error[0].split()[-1]) == pytest.approx(expected, abs=1e-3)
    observed = (
        f'ai_agents_confidence_reliability{{bucket="0.9-1.0",measure="observed",'
        f'tenant="{tenant.tenant_id}"}}'
    )
    assert any(line.startswith(observed) for line in metrics.splitlines()), metrics[-2000:]
    notes = f'ai_agents_confidence_notes{{bucket="0.9-1.0",tenant="{tenant.tenant_id}"}} 11.0'
    assert notes in metrics

    other = await make_tenant("calib-other")  # another tenant's notes are its own
    other_stats = (
        await api.get(
            "/api/v1/feedback/stats", headers={"Authorization": f"Bearer {other.api_token}"}
        )
    ).json()["calibration"]
    assert other_stats["notes"] == 0
