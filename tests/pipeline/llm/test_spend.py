"""What tenants spend, without Ray: the usage ledger and the monthly budgets on the real
PostgreSQL (service role, RLS), and the Enhancer with the real Synthesizer against the LLM and
SDP simulators over HTTP: every answered attempt recorded, a spent budget pausing that tenant's
AI summary (the note says so) and nobody else's, the usage report adding it all up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.pool import tenant_transaction
from db.repositories.llm_usage import month_spend, record_attempts
from pipeline.llm.spend import LLMSpend, month_of, next_month
from pipeline.llm.synthesizer import Synthesizer
from pipeline.llm.usage import PeriodError, month_period, report_csv, usage_report
from pipeline.models import AttemptUsage, SynthesisResult, TicketContext
from pipeline.tenancy.admin import TenantAdmin, TenantUpdate
from pipeline.tenancy.config import TenantSettings
from simulators.llm import LLMSimulatorState
from simulators.llm import create_app as create_llm_app
from simulators.serving import run_in_thread
from tests.workflow_runner import enhance_once

LLM_KEY = "sk-or-v1-spend"
TICKET = {
    "subject": "Outlook cannot reach the Exchange server",
    "description": "Since this morning Outlook on every laptop in accounting says it cannot "
    "connect to the Exchange server; webmail still works.",
}


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[LLMSimulatorState, str]]:
    state = LLMSimulatorState(api_keys=[LLM_KEY])
    with run_in_thread(create_llm_app(state), graceful_shutdown_s=0.2) as server:
        yield state, f"{server.url}/api/v1"


def real_llm(base_url: str):  # noqa: ANN201 - a SynthesisPort
    synthesizer = Synthesizer(
        base_url=base_url, api_key=LLM_KEY, models=["openai/gpt-4o-mini"], backoff_base_s=0.01
    )

    async def synthesize(
        tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult:
        return await synthesizer.synthesize(context, redact=settings.redact_pii)

    return synthesize


def attempt(cost: float, tokens: int = 100, outcome: str = "ok") -> AttemptUsage:
    return AttemptUsage(
        model="vendor/m", outcome=outcome, prompt_tokens=tokens, completion_tokens=tokens // 2,
        cost_usd=cost,
    )  # fmt: skip


async def test_the_ledger_and_its_monthly_sums_stay_in_step(pool, make_tenant) -> None:
    tenant = (await make_tenant("sp")).tenant_id
    spend = LLMSpend(pool)
    await spend.record(tenant, str(uuid.uuid4()), [attempt(0.25), attempt(0.5, outcome="x")])
    await spend.record(tenant, None, [attempt(0.125, tokens=40)])
    await spend.record(tenant, None, [])
    cost, tokens, total = await month_spend(pool, tenant, month_of(datetime.now(UTC)))
    assert cost == pytest.approx(0.875) and tokens == 150 + 150 + 60
    assert total >= cost
    async with tenant_transaction(pool, tenant) as conn:
        ledger = await conn.fetchval("SELECT count(*) FROM llm_usage")
        monthly = await conn.fetch("SELECT attempts, cost_usd FROM llm_usage_monthly")
    assert ledger == 3
    assert [(r["attempts"], float(r["cost_usd"])) for r in monthly] == [(3, 0.875)]


async def test_the_ledger_refuses_rows_of_another_tenant(pool, make_tenant) -> None:
    mine, theirs = (await make_tenant("spa")).tenant_id, (await make_tenant("spb")).tenant_id
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(pool, mine) as conn:
            await record_attempts(conn, theirs, None, [attempt(1.0)])


async def test_budgets_pause_only_the_tenant_that_spent(pool, make_tenant) -> None:
    spender = (await make_tenant("spx")).tenant_id
    frugal = (await make_tenant("spy")).tenant_id
    spend = LLMSpend(pool)
    usd = TenantSettings(monthly_budget_usd=1.0)
    assert await spend.paused(spender, usd) is None
    await spend.record(spender, None, [attempt(0.6)])
    assert await spend.paused(spender, usd) is None  # 60 %
    await spend.record(spender, None, [attempt(0.4)])
    reason = await spend.paused(spender, usd)
    assert reason is not None and reason.startswith("AI summary paused")
    assert "1.00 USD" in reason and next_month(month_of(datetime.now(UTC))).isoformat() in reason
    assert await spend.paused(frugal, usd) is None  # the same budget, nothing spent
    assert await spend.paused(spender, TenantSettings()) is None  # no budget, no pause
    tokens = TenantSettings(monthly_budget_tokens=300)
    assert await spend.paused(spender, tokens) is not None  # 300 tokens used
    assert await spend.paused(frugal, TenantSettings(monthly_budget_tokens=0)) is not None


async def test_the_deployment_budget_pauses_every_tenant(pool, make_tenant) -> None:
    a, b = (await make_tenant("spd")).tenant_id, (await make_tenant("spe")).tenant_id
    month = month_of(datetime.now(UTC))
    _, _, total = await month_spend(pool, a, month)
    spend = LLMSpend(pool, deployment_budget_usd=total + 0.5)
    assert await spend.paused(b, TenantSettings()) is None
    await spend.record(a, None, [attempt(0.5)])
    reason = await spend.paused(b, TenantSettings())
    assert reason is not None and "for the whole service" in reason


async def test_a_job_past_its_budget_gets_a_paused_note_and_others_go_on(
    pool, cipher, owner_conn, make_tenant, sdp, llm
) -> None:
    state, base_url = llm
    sdp_state, sdp_url = sdp
    tenant = await make_tenant("spn", sdp_url=sdp_url)
    other = await make_tenant("spo", sdp_url=sdp_url)
    synthesize = real_llm(base_url)
    state.add_fault("malformed")  # the first answer is unusable: billed, and retried
    first_id, _, first_note = await enhance_once(
        pool, cipher, owner_conn, sdp_state, tenant.tenant_id, TICKET, synthesize=synthesize
    )
    assert "AI summary" not in first_note  # an LLM note
    billed = sum(r.cost_usd for r in state.requests)
    assert len(state.requests) == 2 and billed > 0
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        rows = await conn.fetch(
            "SELECT outcome, cost_usd FROM llm_usage WHERE enhancement_id = $1",
            uuid.UUID(first_id),
        )
    assert sorted(r["outcome"] for r in rows) == ["invalid_output", "ok"]
    assert float(sum(r["cost_usd"] for r in rows)) == pytest.approx(billed)

    # the budget is now spent: the next ticket does not reach the LLM and the note says why
    admin_settings = TenantSettings(monthly_budget_usd=billed / 2)
    await TenantAdmin(pool, cipher).update(
        tenant.tenant_id, TenantUpdate(settings=admin_settings), actor="test"
    )
    asked = len(state.requests)
    paused_id, _, paused_note = await enhance_once(
        pool, cipher, owner_conn, sdp_state, tenant.tenant_id, TICKET, synthesize=synthesize
    )
    assert len(state.requests) == asked
    assert "AI summary paused" in paused_note and "budget" in paused_note
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        row = await conn.fetchrow(
            "SELECT outcome, error FROM enhancements WHERE id = $1", uuid.UUID(paused_id)
        )
    assert row["outcome"] == "context_only" and row["error"].startswith("AI summary paused")

    # another tenant, same budget setting but nothing spent: an LLM note as usual
    await TenantAdmin(pool, cipher).update(
        other.tenant_id, TenantUpdate(settings=admin_settings), actor="test"
    )
    _, _, other_note = await enhance_once(
        pool, cipher, owner_conn, sdp_state, other.tenant_id, TICKET, synthesize=synthesize
    )
    assert "AI summary" not in other_note and len(state.requests) == asked + 1

    # the report adds it up: two runs of the tenant, one LLM note, one paused; two attempts
    start = datetime.now(UTC) - timedelta(hours=1)
    report = await usage_report(pool, start, datetime.now(UTC), tenant_id=tenant.tenant_id)
    [row] = report.tenants
    assert row.tenant_id == tenant.tenant_id and row.tickets == 2
    assert (row.enhancements.llm, row.enhancements.context_only) == (1, 1)
    assert row.llm_attempts == 2 and row.cost_usd == pytest.approx(billed)
    assert [m.model for m in row.models] == ["openai/gpt-4o-mini"]
    everyone = await usage_report(pool, start, datetime.now(UTC), tenant_id=None)
    ids = [r.tenant_id for r in everyone.tenants]
    assert tenant.tenant_id in ids and other.tenant_id in ids and len(ids) == len(set(ids))
    lines = report_csv(report).splitlines()
    assert lines[0].startswith("period_start,period_end,tenant_id,tickets,enhancements_llm")
    assert lines[1].split(",")[2:5] == [tenant.tenant_id, "2", "1"]


def test_periods() -> None:
    assert month_period("2026-11") == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert month_period("2026-12")[1] == datetime(2027, 1, 1, tzinfo=UTC)
    for bad in ("2026-13", "26-11", "2026-1", "November", "1999-01"):
        with pytest.raises(PeriodError):
            month_period(bad)
