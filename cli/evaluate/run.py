"""What `ai-agents eval retrieval` runs, imported only when it runs (the command is in
`cli/evaluate/command.py`): the demo tenants' resolved history (``acme``, ``globex``; the same
generated tickets `ai-agents demo` imports) loaded into a scratch embedded database that is
deleted afterwards, so an evaluation never touches a live tenant, then the labelled cases
scored for full-text, vector and hybrid search."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import asyncpg

from cli.support import fail
from core.sdp_url_policy import SdpUrlPolicy
from core.settings import Settings
from db.pool import create_pool, tenant_transaction
from local_stack.runtime import resolve_runtime
from pipeline.retrieval.embedder import service_embedder
from pipeline.retrieval.embeddings import Embedder
from pipeline.retrieval.evaluation import EvalCase, ModeScore, evaluate
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.vector_index import reindex_tenant
from pipeline.tenancy.admin import TenantAdmin, TenantCreate
from pipeline.tenancy.credential_cipher import CredentialCipher
from simulators.demo_data import EVAL_ANCHOR, load_demo_dataset


async def _load_history(
    pool: asyncpg.Pool, admin: TenantAdmin, tenant: str, embedder: Embedder
) -> dict[str, tuple[str, ...]]:
    await admin.create(
        TenantCreate(id=tenant, sdp_url="http://127.0.0.1:9", sdp_key="eval-only"), actor="eval"
    )
    data = load_demo_dataset(tenant, now=EVAL_ANCHOR)
    async with tenant_transaction(pool, tenant) as conn:
        for request in data.resolved_tickets:
            ticket = ResolvedTicket.from_sdp(request)
            await store_resolved_ticket(conn, tenant, ticket, assess=False)
    await reindex_tenant(pool, tenant, embedder)
    return data.resolved_by_scenario


def _labels(
    cases: list[EvalCase], by_tenant: dict[str, dict[str, tuple[str, ...]]]
) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for case in cases:
        if case.relevant:
            labels[case.case_id] = set(case.relevant)
            continue
        scenarios = by_tenant[case.tenant]
        if case.scenario not in scenarios:
            fail(
                f"case {case.case_id}: no resolved ticket of scenario {case.scenario!r} in "
                f"{case.tenant}'s history"
            )
        labels[case.case_id] = set(scenarios[case.scenario or ""])
    return labels


async def run_eval(cases: list[EvalCase]) -> dict[str, ModeScore]:
    scratch = Path(tempfile.mkdtemp(prefix="aa-eval-", dir="/tmp"))  # short: socket path
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # runs after the DB stops
    runtime = await resolve_runtime(Settings(data_dir=scratch))
    pool = await create_pool(runtime.service_url, min_size=1, max_size=4)
    try:
        # a scratch database whose tenants never call SDP: their placeholder URL is loopback
        admin = TenantAdmin(
            pool,
            CredentialCipher.from_csv(runtime.encryption_keys),
            url_policy=SdpUrlPolicy(allow_loopback=True),
        )
        embedder = service_embedder()
        tenants = sorted({c.tenant for c in cases})
        by_tenant = {t: await _load_history(pool, admin, t, embedder) for t in tenants}
        return await evaluate(pool, cases, _labels(cases, by_tenant), embedder)
    finally:
        await pool.close()
