"""The learning loop on the real PostgreSQL: the features the candidate query computes, the
examples a note leaves, their labels when the resolution arrives, and which model ranks."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.pool import tenant_transaction
from db.repositories import ranking as repo
from pipeline.models import Ticket
from pipeline.note.confidence import note_confidence
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.retrieval.embeddings import WordLlamaEmbedder
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.ranking.features import FEATURE_NAMES
from pipeline.retrieval.ranking.model import default_model
from pipeline.retrieval.ranking.refit import refit
from pipeline.retrieval.ranking.store import RankingModels, record_outcome_inputs
from pipeline.retrieval.vector_index import reindex_tenant

NOW = datetime.now(UTC)
HISTORY = [
    ResolvedTicket(
        "2001",
        "VPN disconnects every few minutes",
        "The tunnel to 10.40.0.1 drops when I work from home.",
        "Raised the dead peer detection interval on the VPN gateway to 60 seconds.",
        None,
        ["VPN"],
        NOW - timedelta(days=10),
    ),
    ResolvedTicket(
        "2002",
        "VPN keeps dropping",
        "FortiClient drops every ten minutes at home.",
        "No response from the user after three reminders; closed.",
        None,
        ["VPN"],
        NOW - timedelta(days=20),
    ),
    ResolvedTicket(
        "2003",
        "Printer shows offline",
        "The network printer is not reachable.",
        "Restored the printer's DHCP reservation.",
        None,
        ["Printing"],
        NOW - timedelta(days=300),
    ),
]
NEW = Ticket(
    ticket_id="9100",
    subject="VPN drops at home",
    description="My VPN to 10.40.0.1 keeps dropping every few minutes.",
    tags=["vpn"],
)


async def _tenant(pool: asyncpg.Pool, make_tenant) -> str:
    tenant = (await make_tenant("loop")).tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        for ticket in HISTORY:
            await store_resolved_ticket(conn, tenant, ticket, assess=False)
    await reindex_tenant(pool, tenant, WordLlamaEmbedder())
    return tenant


async def _enhancement(pool: asyncpg.Pool, tenant: str, ticket_id: str) -> uuid.UUID:
    async with tenant_transaction(pool, tenant) as conn:
        return await conn.fetchval(
            """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload, status,
                   outcome, suggestions)
               VALUES ($1, $2, $3, '{}', 'completed', 'llm', '[]') RETURNING id""",
            tenant,
            ticket_id,
            f"k-{uuid.uuid4()}",
        )


async def test_features_and_the_loop_from_note_to_label(pool, make_tenant) -> None:
    tenant = await _tenant(pool, make_tenant)
    gatherer = ContextGatherer(
        pool, embedder=WordLlamaEmbedder(), models=RankingModels(pool, ttl_s=0)
    )
    context = await gatherer.gather(tenant, NEW)
    record = context.ranking
    assert record is not None and record.model  # default, or a deployment model a test stored
    features = {
        c.ticket_id: dict(zip(FEATURE_NAMES, c.features, strict=True)) for c in record.candidates
    }
    fixed, unfixed = features["2001"], features["2002"]
    assert fixed["shared_ip"] == 1.0 and unfixed["shared_ip"] == 0.0
    assert fixed["same_category"] == 1.0 and features.get("2003", {}).get("same_category", 0) == 0
    assert fixed["real_fix"] == 1.0 and unfixed["real_fix"] == 0.0
    assert fixed["subject"] > 0 and fixed["vector"] > 0.3 and fixed["fulltext"] > 0
    assert 0.8 < fixed["recency"] < 1.0 and fixed["proved_right"] == 0.0
    # the precedent that records a fix ranks first; the one closed without a fix falls behind
    assert record.candidates[0].ticket_id == "2001"
    assert context.similar_tickets[0].ticket_id == "2001"
    assert context.similar_tickets[0].relevance == pytest.approx(record.top_probability, abs=1e-3)
    shown = {t.ticket_id for t in context.similar_tickets}
    assert shown == {c.ticket_id for c in record.candidates if c.shown}

    # the note's examples and confidence are kept; the resolution labels them
    enhancement = await _enhancement(pool, tenant, NEW.ticket_id)
    confidence = note_confidence(record, 0.9)
    assert confidence is not None
    async with tenant_transaction(pool, tenant) as conn:
        await record_outcome_inputs(conn, tenant, enhancement, record, confidence)
        stored = await conn.fetchrow(
            "SELECT confidence, confidence_inputs FROM enhancements WHERE id = $1", enhancement
        )
    assert stored["confidence"] == pytest.approx(confidence.probability, abs=1e-4)
    assert stored["confidence_inputs"]["llm_confidence"] == 0.9
    resolved = ResolvedTicket(
        NEW.ticket_id,
        NEW.subject,
        NEW.description,
        "Raised the dead peer detection interval on the VPN gateway to 60 seconds; stable.",
        None,
        [],
        NOW,
    )
    async with tenant_transaction(pool, tenant) as conn:
        await store_resolved_ticket(conn, tenant, resolved)
        labels = {
            r["candidate_id"]: r["label"]
            for r in await conn.fetch(
                "SELECT candidate_id, label FROM ranking_examples WHERE enhancement_id = $1",
                enhancement,
            )
        }
        outcome = await conn.fetchval(
            "SELECT confidence_outcome FROM enhancements WHERE id = $1", enhancement
        )
    assert labels["2001"] is True and labels["2002"] is False
    assert outcome is True  # the first precedent had the fix

    # a later ticket sees that precedent's record (shown once, right once)
    later = await gatherer.gather(tenant, NEW.model_copy(update={"ticket_id": "9101"}))
    assert later.ranking is not None
    again = {c.ticket_id: c for c in later.ranking.candidates}
    assert again["2001"].features[FEATURE_NAMES.index("proved_right")] == pytest.approx(1 / 3)


async def test_which_model_ranks_a_tenant(pool, make_tenant, caplog) -> None:
    tenant = (await make_tenant("models")).tenant_id
    other = (await make_tenant("models-other")).tenant_id
    models = RankingModels(pool, ttl_s=0)
    deployment_before = await repo.deployment_model(pool)
    if deployment_before is None:  # no other test stored one: the shipped default
        assert (await models.for_tenant(tenant)).scope == "default"
    document = default_model().to_json()
    stored = await repo.store_deployment_model(pool, examples=5, model=document, report={})
    found = await models.for_tenant(tenant)
    assert (found.scope, found.model_id) == ("deployment", stored)
    async with tenant_transaction(pool, tenant) as conn:
        own = await repo.store_tenant_model(conn, tenant, examples=9, model=document, report={})
    assert (await models.for_tenant(tenant)).label == f"tenant #{own}"
    assert (await models.for_tenant(other)).label == f"deployment #{stored}"  # not the tenant's
    async with tenant_transaction(pool, tenant) as conn:
        await repo.store_tenant_model(
            conn, tenant, examples=1, model={"features": {"fused": "NaN"}}, report={}
        )
    with caplog.at_level(logging.WARNING):
        assert (await models.for_tenant(tenant)).scope == "deployment"  # the bad row is skipped
    assert "skipped" in caplog.text


async def _notes(pool: asyncpg.Pool, tenant: str, count: int, *, right: bool) -> None:
    """``count`` VPN tickets enhanced and resolved: with the first precedent's fix, or not."""
    gatherer = ContextGatherer(
        pool, embedder=WordLlamaEmbedder(), models=RankingModels(pool, ttl_s=0)
    )
    fix = HISTORY[0].resolution if right else "Replaced the laptop's network card."
    for n in range(count):
        ticket = NEW.model_copy(update={"ticket_id": f"{9200 + n}-{right}"})
        context = await gatherer.gather(tenant, ticket)
        enhancement = await _enhancement(pool, tenant, ticket.ticket_id)
        async with tenant_transaction(pool, tenant) as conn:
            await record_outcome_inputs(
                conn, tenant, enhancement, context.ranking, note_confidence(context.ranking, None)
            )
            await store_resolved_ticket(
                conn,
                tenant,
                ResolvedTicket(ticket.ticket_id, ticket.subject, "", fix, None, [], NOW),
            )


async def test_refit_installs_a_checked_model_per_tenant_and_says_why_not(
    pool, make_tenant
) -> None:
    tenant = await _tenant(pool, make_tenant)
    quiet = await _tenant(pool, make_tenant)
    await _notes(pool, tenant, 12, right=True)
    await _notes(pool, tenant, 4, right=False)
    results = await refit(
        pool,
        tenants=[tenant, quiet],
        min_deployment_outcomes=5,
        min_tenant_outcomes=10,
        deployment=False,
    )
    own, none = results
    assert (own.tenant, own.notes, own.installed) == (tenant, 16, True)
    assert own.reason.startswith("not checked")  # 20 % of 16 notes: fewer than 10 to check on
    assert none.installed is False and none.notes == 0
    assert none.reason.startswith("not enough outcomes: 0 notes, 10 needed")
    model = await RankingModels(pool, ttl_s=0).for_tenant(tenant)
    assert model.label == f"tenant #{own.model_id}"
    async with tenant_transaction(pool, tenant) as conn:
        stored = await repo.tenant_model(conn)
    assert stored["report"]["queries"] == 16 and stored["examples"] > 16
    # the other tenant still ranks with the deployment's (or the default) model
    assert (await RankingModels(pool, ttl_s=0).for_tenant(quiet)).scope != "tenant"

    # with enough notes to check on, a refit is scored against the model in use first
    await _notes(pool, tenant, 40, right=True)
    dry = await refit(
        pool,
        tenants=[tenant],
        min_deployment_outcomes=5,
        min_tenant_outcomes=10,
        deployment=False,
        dry_run=True,
    )
    assert dry[0].checked_notes == 12 and dry[0].before and dry[0].after
    assert dry[0].reason.endswith("dry run, nothing stored") and dry[0].model_id is None
    assert dry[0].after["log_loss"] is not None
