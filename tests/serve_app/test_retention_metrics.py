"""The retention figures on the ingress' ``/metrics``: what the purge deleted (a counter kept in
PostgreSQL, so every ingress replica and every restart agree) and the oldest row per table."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.tenant_types import RETENTION_DAYS_MAX
from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from pipeline.retention.purge import RetentionPolicy, RetentionTask
from pipeline.tenancy.admin import TenantUpdate
from pipeline.tenancy.config import TenantSettings
from tests.ray_free_api import RayFreeApi, ray_free_api

METRICS_TOKEN = "met_test-" + uuid.uuid4().hex
TABLES = {"enhancements", "enhancement_feedback", "audit_log", "llm_usage"}


@pytest.fixture(scope="module")
async def api(database, encryption_keys, data_dir) -> AsyncIterator[RayFreeApi]:
    async with ray_free_api(
        database, encryption_keys, data_dir, admin_token="adm-ret", metrics_token=METRICS_TOKEN
    ) as api:
        yield api


async def _scrape(api: RayFreeApi) -> dict[str, dict[str, float]]:
    response = await api.http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if "table" in sample.labels:
                out.setdefault(sample.name, {})[sample.labels["table"]] = sample.value
    return out


async def test_purged_rows_and_the_oldest_row_are_exported(
    api, pool, owner_conn, make_tenant, tenant_admin
) -> None:
    tenant = (await make_tenant("ret-metrics")).tenant_id
    await tenant_admin.update(
        tenant, TenantUpdate(settings=TenantSettings(retention_days_jobs=1)), actor="test"
    )
    async with tenant_transaction(pool, tenant) as conn:
        queued = await jobs.enqueue(
            conn,
            tenant_id=tenant,
            ticket_id="1",
            event="created",
            dedupe_key=uuid.uuid4().hex,
            payload={"ticket": {"ticket_id": "1"}},
            trace_context=None,
            trace_id=None,
            notify=False,
        )
    await owner_conn.execute(
        "UPDATE enhancements SET status = 'completed', finished_at = now() - interval '2 days' "
        "WHERE id = $1",
        queued.id,
    )
    before = await _scrape(api)
    assert set(before["ai_agents_retention_purged_total"]) == TABLES
    assert set(before["ai_agents_oldest_row_age_seconds"]) == TABLES
    assert before["ai_agents_oldest_row_age_seconds"]["enhancements"] >= 2 * 86400 - 60

    ceiling = RetentionPolicy(*[RETENTION_DAYS_MAX] * 4)
    await RetentionTask(pool, ceiling).run_once()

    after = await _scrape(api)
    purged = after["ai_agents_retention_purged_total"]
    assert purged["enhancements"] >= before["ai_agents_retention_purged_total"]["enhancements"] + 1
