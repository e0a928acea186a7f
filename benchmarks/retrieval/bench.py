"""Retrieval at scale: latency p95 with N resolved tickets per tenant, embedding CPU per ticket,
and prompt size per enhancement with full-text only and with hybrid retrieval.

Starts an embedded PostgreSQL in a temporary directory, creates two tenants and gives each
``--tickets`` resolved tickets: the demo history, repeated with new ids and a varying
reference number so rows are not identical (the vectors of repeated text are near-duplicates:
the HNSW graph is denser than on real data, which makes this an upper bound for the index
walk). Then times the context gatherer's ticket + KB retrieval (both sources, as a note
needs them) for every case of the shipped evaluation set.

    python -m benchmarks.retrieval [--tickets 10000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from core.sdp_url_policy import SdpUrlPolicy
from core.settings import Settings
from db.pool import create_pool, tenant_transaction
from local_stack.runtime import resolve_runtime
from pipeline.batch.importers import import_kb_directory
from pipeline.llm.contract import build_messages
from pipeline.models import Ticket, TicketContext
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.retrieval.embeddings import WordLlamaEmbedder, ticket_text
from pipeline.retrieval.evaluation import load_eval_set
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.vector_index import TicketText, store_ticket_vectors
from pipeline.tenancy.admin import TenantAdmin, TenantCreate
from pipeline.tenancy.credential_cipher import CredentialCipher
from simulators.demo_data import DATA_DIR, EVAL_ANCHOR, load_demo_dataset

SET = DATA_DIR / "retrieval_eval.jsonl"
BATCH = 500


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _fill(
    pool: Any, tenant: str, count: int, embedder: WordLlamaEmbedder
) -> dict[str, float]:
    data = load_demo_dataset(tenant, now=EVAL_ANCHOR)
    base = [ResolvedTicket.from_sdp(r) for r in data.resolved_tickets]
    embed_cpu = 0.0
    for start in range(0, count, BATCH):
        batch = [
            replace(
                base[n % len(base)],
                ticket_id=f"{base[n % len(base)].ticket_id}-{n}",
                description=f"{base[n % len(base)].description}\n#{n}",
                priority=None,
                tags=[],
                resolved_at=None,
            )
            for n in range(start, min(count, start + BATCH))
        ]
        texts = [ticket_text(t.subject, t.description) for t in batch]
        cpu = time.process_time()
        vectors = await embedder.embed(texts)
        embed_cpu += time.process_time() - cpu
        async with tenant_transaction(pool, tenant) as conn:
            for ticket in batch:
                await store_resolved_ticket(conn, tenant, ticket, assess=False)
            texts_of = [TicketText(t.ticket_id, t.subject, t.description) for t in batch]
            await store_ticket_vectors(conn, embedder, tenant, texts_of, vectors)
    await import_kb_directory(pool, tenant, data.kb_dir, embedder=embedder)
    return {"embed_cpu_ms_per_ticket_batch": embed_cpu * 1000 / count}


def _prompt_tokens(context: TicketContext) -> int:
    """The LLM simulator's estimate (characters / 4) of the prompt the synthesizer sends."""
    return max(1, sum(len(m["content"]) for m in build_messages(context)) // 4)


async def run(tickets: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="aa-rb-", dir="/tmp"))
    try:
        runtime = await resolve_runtime(Settings(data_dir=scratch))
        pool = await create_pool(runtime.service_url, min_size=1, max_size=4)
        # scratch tenants that never call SDP: their placeholder URL is loopback
        admin = TenantAdmin(
            pool,
            CredentialCipher.from_csv(runtime.encryption_keys),
            url_policy=SdpUrlPolicy(allow_loopback=True),
        )
        embedder = WordLlamaEmbedder()
        await embedder.embed(["warm up"])
        cases = load_eval_set(SET)
        figures: dict[str, Any] = {"tickets_per_tenant": tickets, "cases": len(cases)}
        for tenant in sorted({c.tenant for c in cases}):
            await admin.create(
                TenantCreate(id=tenant, sdp_url="http://127.0.0.1:9", sdp_key="bench"),
                actor="bench",
            )
            figures.update(await _fill(pool, tenant, tickets, embedder))
        # What autovacuum's auto-analyze does within a minute of a bulk import; without fresh
        # statistics the planner scans the tenant's rows instead of walking the HNSW index.
        owner = await asyncpg.connect(runtime.owner_url)
        await owner.execute(
            "ANALYZE ticket_history; ANALYZE ticket_embeddings; "
            "ANALYZE kb_documents; ANALYZE kb_chunks"
        )
        await owner.close()
        cpu = time.process_time()
        for case in cases:  # the live path: one ticket per call
            await embedder.embed([ticket_text(case.subject, case.description)])
        figures["embed_cpu_ms_per_live_ticket"] = (time.process_time() - cpu) * 1000 / len(cases)

        hybrid = ContextGatherer(pool, embedder=embedder)
        fulltext = ContextGatherer(pool)
        timings: dict[str, list[float]] = {"hybrid": [], "fulltext": []}
        tokens: dict[str, list[int]] = {"hybrid": [], "fulltext": []}
        for _round in range(2):  # the first round warms caches; both are kept (p95 over all)
            for case in cases:
                ticket = Ticket(
                    ticket_id=f"new-{case.case_id}",
                    subject=case.subject,
                    description=case.description,
                )
                for name, gathering in (("hybrid", hybrid), ("fulltext", fulltext)):
                    context = await gathering.gather(case.tenant, ticket)
                    wanted = {"similar_tickets", "kb_articles"}
                    timings[name].append(
                        max(s.duration_ms for s in context.sources if s.name in wanted)
                    )
                    tokens[name].append(_prompt_tokens(context))
        for name in timings:
            figures[f"{name}_retrieval_p50_ms"] = round(statistics.median(timings[name]), 1)
            figures[f"{name}_retrieval_p95_ms"] = round(_p(timings[name], 0.95), 1)
            figures[f"{name}_prompt_tokens_median"] = int(statistics.median(tokens[name]))
        await pool.close()
        return figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(run(args.tickets))
    print("| figure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
