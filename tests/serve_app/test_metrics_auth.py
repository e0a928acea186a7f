"""`GET /metrics` names every tenant, so only Prometheus (holding the metrics token) may read it.

The real app without Ray (in-process over ASGI) on the session's embedded PostgreSQL, with a
tenant that has a queued job, so the tenant-labelled gauges exist.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from tests.ray_free_api import RayFreeApi, ray_free_api

METRICS_TOKEN = "met_test-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
async def api(database, encryption_keys, data_dir) -> AsyncIterator[RayFreeApi]:
    async with ray_free_api(
        database,
        encryption_keys,
        data_dir,
        admin_token="adm-metrics-test",
        metrics_token=METRICS_TOKEN,
    ) as api:
        yield api


@pytest.fixture(scope="module")
async def queued_tenant(pool, make_tenant) -> str:
    tenant = (await make_tenant("metrics")).tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        await jobs.enqueue(
            conn,
            tenant_id=tenant,
            ticket_id="1",
            event="created",
            dedupe_key=uuid.uuid4().hex,
            notify=False,
            trace_context=None,
            trace_id=None,
            payload={"ticket": {"ticket_id": "1"}, "has_description": True},
        )
    return tenant


async def test_metrics_with_the_token_list_the_tenant(api: RayFreeApi, queued_tenant: str) -> None:
    response = await api.http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert f'ai_agents_queue_depth{{tenant="{queued_tenant}"}} 1.0' in response.text
    assert "ai_agents_database_up 1.0" in response.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic bWV0cmljczp4"}, 401),
        ({"Authorization": "Bearer not-the-token"}, 403),
        (
            {"Authorization": "Bearer adm-metrics-test"},
            403,
        ),  # the admin token is not a metrics token
    ],
)
async def test_metrics_without_the_token_reveal_no_tenant(
    api: RayFreeApi, queued_tenant: str, headers: dict[str, str], status: int
) -> None:
    response = await api.http.get("/metrics", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"detail"}
    assert queued_tenant not in response.text and "ai_agents_" not in response.text


async def test_without_a_configured_token_metrics_are_refused(
    database, encryption_keys, data_dir
) -> None:
    async with ray_free_api(
        database, encryption_keys, data_dir, admin_token="adm-metrics-test", metrics_token=None
    ) as api:
        response = await api.http.get("/metrics", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "ai_agents_" not in response.text
