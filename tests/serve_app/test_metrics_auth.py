"""`GET /metrics` names every tenant, so only Prometheus (holding the metrics token) may read it.

A real API over loopback HTTP on the session's embedded PostgreSQL, with a tenant that has a
queued job, so the tenant-labelled gauges exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from pipeline.core.settings import Settings
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.serving import ServerHandle, run_in_thread

METRICS_TOKEN = "met_test-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def api(database, encryption_keys) -> Iterator[ServerHandle]:
    settings = Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        admin_token="adm-metrics-test",
        metrics_token=METRICS_TOKEN,
    )
    with run_in_thread(create_api(ApiState.from_settings(settings))) as server:
        yield server


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


async def test_metrics_with_the_token_list_the_tenant(
    api: ServerHandle, queued_tenant: str
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{api.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
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
    api: ServerHandle, queued_tenant: str, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{api.url}/metrics", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"detail"}
    assert queued_tenant not in response.text and "ai_agents_" not in response.text


def test_without_a_configured_token_metrics_are_refused(database, encryption_keys) -> None:
    settings = Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        admin_token="adm-metrics-test",
        metrics_token=None,
    )
    with run_in_thread(create_api(ApiState.from_settings(settings))) as server:
        response = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "ai_agents_" not in response.text
