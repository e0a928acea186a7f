"""``GET /api/v1/usage`` and the spend on ``/metrics``: the real app without Ray (in-process over
ASGI) on the session's PostgreSQL, with enhancements and ledger rows written the way the
Enhancer writes them. A tenant token reads its own usage only; the admin token every tenant's,
one row each; the metrics carry the ledger's totals per tenant and the budgets' use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.llm.spend import LLMSpend
from pipeline.models import AttemptUsage
from tests.ray_free_api import ApiTenant, RayFreeApi, ray_free_api

METRICS_TOKEN = "met_usage-" + uuid.uuid4().hex
ADMIN = "adm-usage-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
async def api(database, encryption_keys, data_dir) -> AsyncIterator[RayFreeApi]:
    async with ray_free_api(
        database,
        encryption_keys,
        data_dir,
        admin_token=ADMIN,
        metrics_token=METRICS_TOKEN,
        llm_monthly_budget_usd=1_000_000.0,
    ) as api:
        yield api


async def finished(owner_conn, tenant_id: str, ticket_id: str, outcome: str) -> uuid.UUID:
    """An enhancement as the Enhancer leaves it (set up as the table owner)."""
    return await owner_conn.fetchval(
        """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload, status,
               outcome, finished_at)
           VALUES ($1, $2, $3, '{}', 'completed', $4, now()) RETURNING id""",
        tenant_id,
        ticket_id,
        uuid.uuid4().hex,
        outcome,
    )


def attempt(model: str, cost: float, outcome: str = "ok") -> AttemptUsage:
    return AttemptUsage(
        model=model, outcome=outcome, prompt_tokens=1000, completion_tokens=200, cost_usd=cost
    )


@pytest.fixture(scope="module")
async def tenants(api: RayFreeApi, pool, owner_conn) -> tuple[ApiTenant, ApiTenant]:
    busy = await api.tenant("use", settings={"monthly_budget_usd": 0.5})
    quiet = await api.tenant("usq")
    spend = LLMSpend(pool)
    first = await finished(owner_conn, busy.tenant_id, "10", "llm")
    await spend.record(
        busy.tenant_id,
        str(first),
        [attempt("vendor/a", 0.1, "invalid_output"), attempt("vendor/a", 0.1)],
    )
    again = await finished(owner_conn, busy.tenant_id, "10", "llm")  # re-enhanced: a run too
    await spend.record(busy.tenant_id, str(again), [attempt("vendor/b", 0.3)])
    await finished(owner_conn, busy.tenant_id, "11", "context_only")
    await finished(owner_conn, busy.tenant_id, "12", "skipped")
    return busy, quiet


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_tenant_reads_its_own_usage(api: RayFreeApi, tenants) -> None:
    busy, _ = tenants
    response = await api.http.get("/api/v1/usage", headers=bearer(busy.api_token))
    assert response.status_code == 200, response.text
    body = response.json()
    [row] = body["tenants"]
    assert row["tenant_id"] == busy.tenant_id
    assert row["tickets"] == 3
    assert row["enhancements"] == {
        "llm": 2,
        "context_only": 1,
        "skipped": 1,
        "failed": 0,
        "unfinished": 0,
    }
    assert row["llm_attempts"] == 3  # the unusable answer was billed too
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3000, 600)
    assert row["cost_usd"] == pytest.approx(0.5)
    assert [(m["model"], m["attempts"]) for m in row["models"]] == [
        ("vendor/b", 1),
        ("vendor/a", 2),
    ]
    start = datetime.fromisoformat(body["start"])
    assert start.day == 1 and start.hour == 0 and start.utcoffset() == timedelta(0)


async def test_a_tenant_cannot_name_another(api: RayFreeApi, tenants) -> None:
    busy, quiet = tenants
    response = await api.http.get(
        "/api/v1/usage", params={"tenant_id": busy.tenant_id}, headers=bearer(quiet.api_token)
    )
    assert response.status_code == 403
    own = await api.http.get("/api/v1/usage", headers=bearer(quiet.api_token))
    assert [r["tenant_id"] for r in own.json()["tenants"]] == [quiet.tenant_id]
    assert own.json()["tenants"][0]["cost_usd"] == 0


async def test_the_admin_reads_every_tenant_one_row_each(api: RayFreeApi, tenants) -> None:
    busy, quiet = tenants
    response = await api.http.get("/api/v1/usage", headers=api.admin)
    assert response.status_code == 200
    rows = response.json()["tenants"]
    ids = [r["tenant_id"] for r in rows]
    assert busy.tenant_id in ids and quiet.tenant_id in ids and len(ids) == len(set(ids))
    assert ids == sorted(ids)


async def test_a_period_without_the_usage_shows_none(api: RayFreeApi, tenants) -> None:
    busy, _ = tenants
    response = await api.http.get(
        "/api/v1/usage",
        params={"from": "2025-01-01T00:00:00", "to": "2025-02-01T00:00:00Z"},
        headers=bearer(busy.api_token),
    )
    assert response.status_code == 200
    assert response.json()["start"].startswith("2025-01-01T00:00:00")
    [row] = response.json()["tenants"]
    assert row["tickets"] == 0 and row["cost_usd"] == 0 and row["models"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "after"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "400 days"),
        ({"from": "yesterday"}, "datetime"),
        ({"to": "0001-01-01T00:00:00+14:00"}, "out of range"),
    ],
)
async def test_bad_periods_are_422_never_500(
    api: RayFreeApi, tenants, params: dict[str, str], message: str
) -> None:
    busy, _ = tenants
    response = await api.http.get("/api/v1/usage", params=params, headers=bearer(busy.api_token))
    assert response.status_code == 422, response.text
    assert message in response.text


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"Authorization": "Bearer nope"}, 403)]
)
async def test_without_a_token_it_is_refused(
    api: RayFreeApi, headers: dict[str, str], status: int
) -> None:
    assert (await api.http.get("/api/v1/usage", headers=headers)).status_code == status


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


async def test_metrics_carry_the_ledger_totals_and_the_budgets(api: RayFreeApi, tenants) -> None:
    busy, quiet = tenants
    response = await api.http.get("/metrics", headers=bearer(METRICS_TOKEN))
    text = response.text
    assert "# TYPE ai_agents_llm_tokens_total counter" in text
    tenant = busy.tenant_id
    assert metric(text, "ai_agents_llm_tokens_total", tenant=tenant, kind="prompt") == 3000
    assert metric(text, "ai_agents_llm_tokens_total", tenant=tenant, kind="completion") == 600
    assert metric(text, "ai_agents_llm_cost_usd_total", tenant=tenant) == pytest.approx(0.5)
    # 0.5 USD of a 0.5 USD budget: spent
    assert metric(text, "ai_agents_llm_budget_used_ratio", tenant=tenant, unit="usd") == 1.0
    assert metric(text, "ai_agents_llm_budget_used_ratio", tenant=quiet.tenant_id) is None
    deployment = metric(text, "ai_agents_llm_deployment_budget_used_ratio")
    assert deployment is not None and 0 < deployment < 0.01
    assert "ai_agents_llm_tokens_created" not in text
