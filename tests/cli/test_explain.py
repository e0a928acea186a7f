"""`ai-agents explain` and GET /api/v1/enhancements/{id}/explain: retrieval candidates with
scores and reasons, the redacted prompt, the raw model answer, outcome, timings and cost, for
the tenant that owns the enhancement only; explain records expire with the retention."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from core.settings import Settings
from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue, store_insight
from db.repositories.knowledge import upsert_resolved_ticket
from pipeline.llm.synthesizer import Synthesizer
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.insight import explain_record
from pipeline.retrieval.ranking.features import FEATURE_NAMES
from pipeline.tenancy.config import TenantSettings
from pipeline.text.redaction import EMAIL
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.llm.app import create_app as create_llm_app
from simulators.llm.state import LLMSimulatorState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread
from tests.cli_runner import assert_one_line_error, run
from tests.workflow_runner import enhance_once

TICKET = {
    "subject": "VPN drops every few minutes",
    "description": "The VPN client disconnects every few minutes. Call me back at "
    "jane.doe@acme.example if you need the logs.",
}


@pytest.fixture(scope="module")
def sdp() -> Iterator[SimulatorState]:
    state = SimulatorState()
    with run_in_thread(create_sdp_app(state)) as server:
        state.url = server.url  # type: ignore[attr-defined]
        yield state


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with run_in_thread(create_llm_app(LLMSimulatorState())) as server:
        yield server.url


@pytest.fixture(scope="module")
async def api(database, encryption_keys) -> AsyncIterator[httpx.AsyncClient]:
    state = ApiState.from_settings(
        Settings(database_url=database.service_url, encryption_keys=encryption_keys)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_api(state)), base_url="http://api"
    ) as client:
        yield client
    await state.close()


def _redacting_llm(llm_url: str):  # noqa: ANN202 - a SynthesisPort
    synthesizer = Synthesizer(
        base_url=f"{llm_url}/v1", api_key="sk-test", models=["openai/gpt-4o-mini"]
    )

    async def synthesize(
        tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult:
        return await synthesizer.synthesize(context, redact=settings.redact_pii)

    return synthesize


async def test_explain_shows_candidates_redacted_prompt_and_raw_answer(
    pool, cipher, owner_conn, make_tenant, sdp, llm_url, api, cli_env
) -> None:
    tenant = await make_tenant("ex", sdp_url=sdp.url)
    other = await make_tenant("exo", sdp_url=sdp.url)
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        await upsert_resolved_ticket(
            conn,
            tenant_id=tenant.tenant_id,
            ticket_id="501",
            subject="VPN disconnects",
            description="VPN drops every few minutes",
            resolution="Raised the DPD interval.",
            priority=None,
            tags=[],
            resolved_at=None,
        )
    enhancement_id, _, _ = await enhance_once(
        pool, cipher, owner_conn, sdp, tenant.tenant_id, TICKET, synthesize=_redacting_llm(llm_url)
    )

    response = await api.get(
        f"/api/v1/enhancements/{enhancement_id}/explain",
        headers={"Authorization": f"Bearer {tenant.api_token}"},
    )
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["status"], found["outcome"], found["explain_available"]) == (
        "completed",
        "llm",
        True,
    )
    [candidate] = found["candidates"]["similar_tickets"]
    assert candidate["ticket_id"] == "501" and candidate["score"] > 0
    assert candidate["why"].startswith("ranked 1 of 1 by the learned model (")
    assert candidate["relevance"] > 0
    ranking = found["ranking"]  # each feature's contribution: weight × value, per candidate
    [first] = ranking["ranked"]
    assert (first["ticket_id"], first["rank"], first["shown"]) == ("501", 1, True)
    assert set(first["contributions"]) == set(first["values"]) == set(FEATURE_NAMES)
    logit = sum(first["contributions"].values()) + ranking["intercept"]
    assert first["probability"] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-3)
    assert found["confidence"] is not None and found["confidence_outcome"] is None
    assert found["confidence_inputs"]["first_probability"] == first["probability"]
    prompt = "\n".join(m["content"] for m in found["prompt"])
    assert [m["role"] for m in found["prompt"]] == ["system", "user"]
    assert "jane.doe@acme.example" not in prompt and EMAIL in prompt  # as the LLM saw it
    assert "[ticket:501]" in prompt
    assert json.loads(found["raw_answer"])["summary"]  # the model's answer, verbatim
    assert found["llm"]["mode"] == "llm" and found["llm"]["models_tried"]
    assert {"context", "synthesis", "writeback", "total"} <= set(found["stage_timings"])
    assert found["prompt_tokens"] > 0 and found["cost_usd"] > 0 and found["fallbacks"] == []
    assert found["proposals"][0]["citation"] == "ticket:501"
    assert found["redactions"] == {"email": 1}  # counts by kind, never the value
    [billed] = found["llm"]["usage"]
    assert billed["outcome"] == "ok"
    assert billed["cost_usd"] == pytest.approx(found["cost_usd"], abs=1e-6)  # numeric(14, 6)

    other_view = await api.get(
        f"/api/v1/enhancements/{enhancement_id}/explain",
        headers={"Authorization": f"Bearer {other.api_token}"},
    )
    assert other_view.status_code == 404 and other_view.json() == {
        "detail": "Enhancement not found"
    }
    bad = await api.get(
        "/api/v1/enhancements/not-a-uuid/explain",
        headers={"Authorization": f"Bearer {tenant.api_token}"},
    )
    assert bad.status_code == 422 and "detail" in bad.json()

    _check_cli(cli_env, enhancement_id, found)


def _check_cli(cli_env: dict[str, str], enhancement_id: str, api_view: dict) -> None:
    as_json = run(cli_env, "explain", enhancement_id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == api_view  # the same document as the API
    text = run(cli_env, "explain", enhancement_id)
    assert text.returncode == 0, text.stderr
    for fragment in (
        "Retrieval: similar_tickets",
        "ranked 1 of 1 by the learned model",
        "Why they ranked so: each feature's contribution",
        "proved_right",
        "= logit → probability",
        "confidence",
        "prompt: user",
        "raw model answer",
        "stage timings",
        EMAIL,
        "redacted from the prompt",
        "email 1",
        "billed attempts",
    ):
        assert fragment in text.stdout, fragment
    assert "jane.doe@acme.example" not in text.stdout
    assert_one_line_error(run(cli_env, "explain", str(uuid.uuid4())), "not found")
    assert_one_line_error(run(cli_env, "explain", "nope"), "not an enhancement id")
    helped = run(cli_env, "explain", "--help")
    assert helped.returncode == 0 and "Example" in helped.stdout


async def test_explain_records_expire_with_the_retention(
    pool, cipher, owner_conn, make_tenant, sdp, api
) -> None:
    tenant = await make_tenant("exr", sdp_url=sdp.url)
    old_id, _, _ = await enhance_once(pool, cipher, owner_conn, sdp, tenant.tenant_id, TICKET)
    await owner_conn.execute(  # set-up: as if it had finished 31 days ago
        "UPDATE enhancements SET finished_at = now() - interval '31 days' WHERE id = $1",
        uuid.UUID(old_id),
    )
    new_id, _, _ = await enhance_once(pool, cipher, owner_conn, sdp, tenant.tenant_id, TICKET)
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    old = (await api.get(f"/api/v1/enhancements/{old_id}/explain", headers=auth)).json()
    new = (await api.get(f"/api/v1/enhancements/{new_id}/explain", headers=auth)).json()
    assert old["explain_available"] is False and "30 days" in old["explain_missing_reason"]
    assert old["outcome"] == "context_only" and old["stage_timings"]  # the row itself stays
    assert new["explain_available"] is True and new["prompt"] is None  # no LLM was called
    assert any(f.startswith("context-only note") for f in new["fallbacks"])


async def test_a_nul_in_the_model_answer_cannot_cost_the_record(pool, make_tenant) -> None:
    """jsonb refuses U+0000; the record drops it instead of failing the completion."""
    tenant = await make_tenant("exn")
    context = TicketContext(ticket=Ticket(ticket_id="1", subject="s"))
    synthesis = SynthesisResult(mode="context_only", reason="x", raw_answer="{\x00}")
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        job = await enqueue(
            conn,
            tenant_id=tenant.tenant_id,
            ticket_id="1",
            event="created",
            dedupe_key="n",
            payload={},
            trace_context=None,
            trace_id=None,
            notify=False,
        )
        await store_insight(
            conn,
            job.id,
            suggestions=[],
            retention_days=30,
            explain=explain_record(context, synthesis, outcome="context_only"),
        )
        stored = await conn.fetchval("SELECT explain FROM enhancements WHERE id = $1", job.id)
    assert stored["raw_answer"] == "{}"
