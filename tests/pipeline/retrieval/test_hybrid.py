"""Vectors in PostgreSQL (pgvector, real offline model) and the fused ranking built on them.

Real embedded PostgreSQL with the `vector` extension, the real wordllama model, the service
role under RLS. The fallback path (no extension) runs on a second database of the same server
where the extension was dropped, as on an external PostgreSQL without pgvector."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from core.metric_catalogue import RETRIEVAL_LATENCY, VECTOR_SEARCH_AVAILABLE
from core.sdp_url_policy import SdpUrlPolicy
from core.settings import Settings
from db.embedded import EmbeddedDatabase
from db.migrate import ensure_vector_indexes, migrate
from db.pool import create_pool, tenant_transaction
from db.repositories.knowledge import upsert_kb_document, upsert_resolved_ticket
from pipeline.models import Ticket
from pipeline.observability.metrics import InMemoryMetrics
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.retrieval.embeddings import WordLlamaEmbedder
from pipeline.retrieval.hybrid import diversify, fuse
from pipeline.retrieval.vector_index import kb_chunks, reindex_tenant
from pipeline.tenancy.admin import TenantAdmin, TenantCreate
from serve_app.api import create_api
from serve_app.api_state import ApiState

HISTORY = [
    (
        "1001",
        "External display not detected after docking",
        "Monitor stays dark when the laptop is docked.",
        "Updated the dock firmware and the display driver; the external monitor is detected again.",
    ),
    (
        "1002",
        "VPN disconnects every few minutes",
        "Remote VPN session drops when idle.",
        "Raised the dead peer detection interval on the VPN gateway.",
    ),
    (
        "1003",
        "Outlook keeps asking for password",
        "Credential prompt loops in Outlook.",
        "Cleared stale credentials and recreated the Outlook profile.",
    ),
    (
        "1004",
        "Printer shows offline",
        "Network printer not reachable from the PCs.",
        "Restored the printer's DHCP reservation.",
    ),
    (
        "1005",
        "Display driver crash on projector in meeting room",
        "Projector flickers.",
        "Reinstalled the display driver.",
    ),
]
# Shares no stemmed word with ticket 1001 (full-text cannot find it); shares meaning.
END_USER = Ticket(
    ticket_id="9001",
    subject="no image on my second screen",
    description="I put the notebook on its stand and the other screen shows nothing",
)


class RenamedModel(WordLlamaEmbedder):
    """The same vectors under another model name: enough to prove a model change is seen."""

    model = "wordllama/renamed-for-test"


async def seed(pool: asyncpg.Pool, tenant_id: str) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        for ticket_id, subject, description, resolution in HISTORY:
            await upsert_resolved_ticket(
                conn,
                tenant_id=tenant_id,
                ticket_id=ticket_id,
                subject=subject,
                description=description,
                resolution=resolution,
                priority=None,
                tags=[],
                resolved_at=None,
            )
        await upsert_kb_document(
            conn,
            tenant_id=tenant_id,
            doc_id="docking",
            title="Docking stations and external monitors",
            body="If an external monitor stays black after docking, "
            "update the dock firmware.\n\n" + "filler " * 300,
            url=None,
            source_path=None,
        )


def test_fusion_prefers_agreement_and_normalises_to_one() -> None:
    lists = {"fulltext": [("a", 0.5), ("b", 0.4), ("c", 0.1)], "vector": [("b", 0.9), ("d", 0.8)]}
    fused = fuse(lists, {"fulltext": 1.0, "vector": 1.0})
    assert [i for i, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == round((1 / 62 + 1 / 61) / (2 / 61), 4)
    weighted = fuse(lists, {"fulltext": 1.0, "vector": 3.0}, method="weighted")
    assert [i for i, _ in weighted] == ["b", "d", "a", "c"]
    assert weighted[0][1] == round((0.4 + 3 * 0.9) / 4, 4)
    assert fuse({"fulltext": [("x", 1.0)], "vector": [("x", 1.0)]}, {})[0] == ("x", 1.0)
    assert fuse({}, {}) == []


def test_diversify_keeps_the_best_first_and_spreads_near_duplicates() -> None:
    fused = [("vpn-1", 0.9), ("vpn-2", 0.89), ("vpn-3", 0.88), ("outlook", 0.8), ("new", 0.7)]
    same, other = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    vectors = {"vpn-1": same, "vpn-2": same, "vpn-3": same, "outlook": other}  # "new": none
    spread = diversify(fused, vectors, diversity=0.3, limit=3)
    # the best fused ticket stays first; copies of it give way to different tickets, and a
    # ticket without a vector counts as unlike the others; scores are the fused ones
    assert spread == [("vpn-1", 0.9), ("outlook", 0.8), ("new", 0.7)]
    assert diversify(fused, vectors, diversity=0.0, limit=3) == fused[:3]
    assert diversify(fused, {}, diversity=0.3, limit=2) == fused[:2]
    assert diversify([], vectors, diversity=0.3, limit=5) == []
    assert diversify(fused, vectors, diversity=0.3, limit=0) == []


def test_long_articles_are_chunked_with_their_title() -> None:
    chunks = kb_chunks("VPN guide", "word " * 250 + "\n\nlast paragraph")
    assert len(chunks) == 3 and all(c.startswith("VPN guide\n") for c in chunks)
    assert kb_chunks("Empty", "") == ["Empty"]


async def test_reindex_embeds_missing_then_only_stale(pool, make_tenant) -> None:
    tenant = (await make_tenant("vec")).tenant_id
    await seed(pool, tenant)
    embedder = WordLlamaEmbedder()
    first = await reindex_tenant(pool, tenant, embedder, batch=2)
    assert (first.tickets_total, first.tickets_embedded) == (5, 5)
    assert (first.docs_embedded, first.chunks_embedded) == (1, 4)  # 15 + 120 + 120 + 60
    again = await reindex_tenant(pool, tenant, embedder)
    assert (again.tickets_embedded, again.docs_embedded) == (0, 0)  # resumable: fresh skipped
    async with tenant_transaction(pool, tenant) as conn:
        await conn.execute(
            "UPDATE ticket_history SET description = 'edited' WHERE ticket_id = '1004'"
        )
        stored = await conn.fetchrow(
            "SELECT model, dimensions FROM ticket_embeddings WHERE ticket_id = '1001'"
        )
    assert tuple(stored) == (embedder.model, 256)
    assert (await reindex_tenant(pool, tenant, embedder)).tickets_embedded == 1
    changed = await reindex_tenant(pool, tenant, RenamedModel())
    assert (changed.tickets_embedded, changed.docs_embedded) == (5, 1)


async def test_hybrid_finds_the_end_user_ticket_first_and_is_tenant_scoped(
    pool, make_tenant
) -> None:
    tenant = (await make_tenant("hyb")).tenant_id
    other = (await make_tenant("hyb-other")).tenant_id
    embedder = WordLlamaEmbedder()
    for t in (tenant, other):
        await seed(pool, t)
        await reindex_tenant(pool, t, embedder)
    metrics = InMemoryMetrics()
    context = await ContextGatherer(pool, embedder=embedder, metrics=metrics).gather(
        tenant, END_USER
    )
    fulltext_only = await ContextGatherer(pool).gather(tenant, END_USER)
    ids = [t.ticket_id for t in context.similar_tickets]
    assert ids[0] == "1001", ids
    assert "1001" not in [t.ticket_id for t in fulltext_only.similar_tickets]
    # the bar may leave the right precedent alone in the note; the ranking keeps the others below
    assert context.ranking is not None and len(context.ranking.candidates) > 1
    ranked = context.ranking.candidates
    assert ranked[0].ticket_id == "1001" and ranked[0].probability > ranked[-1].probability
    # the live path hands the ticket's own text to the spelling feature
    names = context.ranking.feature_names
    spelling = [dict(zip(names, c.features, strict=True))["spelling"] for c in ranked]
    assert all(value > 0 for value in spelling) and max(spelling) <= 1.0
    assert [t.score for t in context.similar_tickets] == sorted(
        (t.score for t in context.similar_tickets), reverse=True
    )
    assert context.kb_articles and context.kb_articles[0].article_id == "docking"
    assert metrics.gauges[(VECTOR_SEARCH_AVAILABLE.name, ())] == 1.0
    assert len(metrics.observations[RETRIEVAL_LATENCY.name]) == 2
    async with tenant_transaction(pool, tenant) as conn:  # RLS: only this tenant's vectors
        seen = await conn.fetchval("SELECT count(DISTINCT tenant_id) FROM ticket_embeddings")
    assert seen == 1


@pytest.fixture
async def no_vector_pool(database: EmbeddedDatabase) -> AsyncIterator[asyncpg.Pool]:
    """A second database on the same server, migrated, then without the `vector` extension."""
    admin = await asyncpg.connect(database.owner_url)
    await admin.execute("DROP DATABASE IF EXISTS novector")
    await admin.execute("CREATE DATABASE novector")
    await admin.close()
    owner_url = database.owner_url.replace("/postgres?", "/novector?")
    service_url = database.service_url.replace("/postgres?", "/novector?")
    await migrate(owner_url, service_url)
    owner = await asyncpg.connect(owner_url)
    await owner.execute("DROP EXTENSION vector CASCADE")
    assert await ensure_vector_indexes(owner) is False
    await owner.close()
    pool = await create_pool(service_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_without_pgvector_ready_says_full_text_only(
    no_vector_pool, database, encryption_keys
) -> None:
    service_url = database.service_url.replace("/postgres?", "/novector?")
    state = ApiState.from_settings(
        Settings(database_url=service_url, encryption_keys=encryption_keys, admin_token="adm_x")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_api(state)), base_url="http://api"
    ) as client:
        ready = await client.get("/api/v1/ready", headers={"Authorization": "Bearer adm_x"})
    await state.close()
    vector = ready.json()["components"]["vector_search"]
    assert vector["ok"] is True and vector["mode"] == "full-text only"
    assert "pgvector" in vector["detail"]


async def test_without_pgvector_retrieval_falls_back_to_fulltext_and_says_so(
    no_vector_pool, cipher, caplog
) -> None:
    pool = no_vector_pool
    owner_tenant = "nv"
    admin = TenantAdmin(pool, cipher, url_policy=SdpUrlPolicy(allow_loopback=True))
    await admin.create(
        TenantCreate(id=owner_tenant, sdp_url="http://127.0.0.1:9", sdp_key="k"), actor="test"
    )
    await seed(pool, owner_tenant)
    metrics = InMemoryMetrics()
    gathering = ContextGatherer(pool, embedder=WordLlamaEmbedder(), metrics=metrics)
    ticket = Ticket(ticket_id="9002", subject="VPN disconnects", description="VPN drops again")
    context = await gathering.gather(owner_tenant, ticket)
    assert [t.ticket_id for t in context.similar_tickets][:1] == ["1002"]
    assert metrics.gauges[(VECTOR_SEARCH_AVAILABLE.name, ())] == 0.0
    assert "pgvector" in gathering.vectors.detail()
    assert any("full-text only" in r.getMessage() for r in caplog.records)


async def test_resolved_webhook_embedding_is_stored_or_logged_never_raised(
    pool, make_tenant, caplog
) -> None:
    from pipeline.retrieval.embedder import embed_resolved_ticket

    tenant = (await make_tenant("res")).tenant_id
    await seed(pool, tenant)
    stored = Ticket(
        ticket_id="1002",
        subject="VPN disconnects every few minutes",
        description="Remote VPN session drops when idle.",
    )
    assert await embed_resolved_ticket(pool, tenant, stored) is True
    async with tenant_transaction(pool, tenant) as conn:
        assert await conn.fetchval("SELECT count(*) FROM ticket_embeddings") == 1
    missing = Ticket(ticket_id="no-such-row", subject="x y z")  # no history row: FK refuses
    assert await embed_resolved_ticket(pool, tenant, missing) is False
    assert any("without a vector" in r.getMessage() for r in caplog.records)
