"""What `ai-agents eval retrieval` runs, imported only when it runs (the command is in
`cli/evaluate/command.py`).

A scratch embedded database (deleted afterwards, so an evaluation never touches a live tenant)
gets the demo tenants (``acme``, ``globex``: the same generated tickets `ai-agents demo`
imports) with their KB, then their resolved history **replayed in time order**: each ticket is
asked as a new ticket when it was created, against the tickets resolved before it, and stored
when it was resolved (:mod:`pipeline.retrieval.replay`). Then the labelled set's cases are
asked against the whole history.

Fitting and scoring never share a query:

- without ``--replay``: the model is fitted on the replayed history and the set's ``train``
  part, and scored on its ``holdout`` part (the ``train`` part's scores are shown for
  reference, marked as fitted on); the ``train`` part is also scored out-of-fold (five folds,
  each by a model fitted without it), the figures a change is chosen on;
- with ``--replay DATE``: fitted on the tickets created before DATE only, scored on those
  created from DATE on (and on the set's ``holdout`` part, when a set is given).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from cli.support import fail
from core.sdp_url_policy import SdpUrlPolicy
from core.settings import Settings
from db.pool import create_pool, tenant_transaction
from local_stack.runtime import resolve_runtime
from pipeline.batch.importers import import_kb_directory
from pipeline.retrieval.embedder import service_embedder
from pipeline.retrieval.embeddings import Embedder, ticket_text
from pipeline.retrieval.evaluation import EvalCase, ModeScore, evaluate
from pipeline.retrieval.history import ResolvedTicket
from pipeline.retrieval.hybrid import HybridRetrieval
from pipeline.retrieval.ranking.fitting import FitSettings, fit_model
from pipeline.retrieval.ranking.model import RankingModel
from pipeline.retrieval.replay import (
    EvalQuery,
    HistoryItem,
    OutcomeRecord,
    collect,
    misses,
    out_of_fold,
    replay_history,
    retrieval_query,
    score_modes,
)
from pipeline.tenancy.admin import TenantAdmin, TenantCreate
from pipeline.tenancy.credential_cipher import CredentialCipher
from simulators.demo_data import EVAL_ANCHOR, SCENARIOS, TENANTS, DemoDataset, load_demo_dataset

KB_OF = {s.key: s.kb for s in SCENARIOS}
WARM_UP = 60  # resolved tickets a tenant's history holds before replayed tickets are asked
ANALYZE = (
    "ANALYZE ticket_history; ANALYZE ticket_terms; ANALYZE ticket_embeddings; "
    "ANALYZE kb_documents; ANALYZE kb_chunks; ANALYZE ranking_examples"
)


@dataclass
class EvalRun:
    """Everything the command prints: the three first-stage modes on the set, the learned
    model's scores on what it was not fitted on, and the model itself."""

    cases: int
    replay: date | None
    model: RankingModel
    fit: dict[str, Any]
    scored: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> score_modes()
    modes: dict[str, ModeScore] = field(default_factory=dict)


def _created(request: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(request["created_time"]["value"]) / 1000, UTC)


def _kb_ids(data: DemoDataset, scenarios: tuple[str, ...]) -> set[str]:
    out = set()
    for key in scenarios:
        kb = KB_OF.get(key)
        if kb and (data.kb_dir / f"{kb}.md").is_file():
            out.add(kb.lower())
    return out


def _relevant(data: DemoDataset, scenarios: tuple[str, ...]) -> set[str]:
    return {i for key in scenarios for i in data.resolved_by_scenario.get(key, ())}


async def _tenant(
    pool: asyncpg.Pool,
    admin: TenantAdmin,
    tenant: str,
    embedder: Embedder,
    replay: date | None,
    owner_url: str | None,
    outcomes: OutcomeRecord,
) -> tuple[DemoDataset, list[EvalQuery]]:
    await admin.create(
        TenantCreate(id=tenant, sdp_url="http://127.0.0.1:9", sdp_key="eval-only"), actor="eval"
    )
    data = load_demo_dataset(tenant, now=EVAL_ANCHOR)
    await import_kb_directory(pool, tenant, data.kb_dir, embedder=embedder)
    items = [
        HistoryItem(ResolvedTicket.from_sdp(r), _created(r), data.scenario_of[r["id"]])
        for r in data.resolved_tickets
    ]

    def split_of(moment: datetime) -> str:
        if replay is None:
            return "train"
        return "before" if moment.date() < replay else "after"

    async def analyze() -> None:  # what autovacuum's auto-analyze would do as the history grows
        if owner_url is not None:
            owner = await asyncpg.connect(owner_url)
            try:
                await owner.execute(ANALYZE)
            finally:
                await owner.close()

    queries = await replay_history(
        pool,
        tenant,
        items,
        embedder,
        relevant_of=lambda item: _relevant(data, (item.scenario,)),
        kb_of=lambda item: _kb_ids(data, (item.scenario,)),
        split_of=split_of,
        refresh_statistics=analyze,
        warm_up=WARM_UP,
        outcomes=outcomes,
    )
    return data, queries


async def _case_queries(
    pool: asyncpg.Pool,
    cases: list[EvalCase],
    datasets: dict[str, DemoDataset],
    embedder: Embedder,
    outcomes: dict[str, OutcomeRecord],
) -> list[EvalQuery]:
    vectors = await embedder.embed([ticket_text(c.subject, c.description) for c in cases])
    hybrid = HybridRetrieval()
    out = []
    for case, vector in zip(cases, vectors, strict=True):
        data = datasets[case.tenant]
        query = retrieval_query(
            case.subject,
            case.description,
            vector=vector,
            embedding_model=embedder.model,
            tags=[case.category] if case.category else [],
            as_of=EVAL_ANCHOR,
        )
        async with tenant_transaction(pool, case.tenant) as conn:
            candidates, kb = await collect(conn, hybrid, query)
        candidates = outcomes[case.tenant].with_record(candidates)
        out.append(
            EvalQuery(
                query_id=case.case_id,
                tenant=case.tenant,
                split=case.split,
                wording=case.wording,
                as_of=EVAL_ANCHOR,
                candidates=candidates,
                relevant=set(case.relevant) or _relevant(data, case.scenarios),
                kb=kb,
                kb_relevant=_kb_ids(data, case.scenarios),
                subject=case.subject,
            )
        )
    return out


def _labels(cases: list[EvalCase], datasets: dict[str, DemoDataset]) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for case in cases:
        if case.relevant:
            labels[case.case_id] = set(case.relevant)
            continue
        data = datasets[case.tenant]
        missing = [s for s in case.scenarios if s not in data.resolved_by_scenario]
        if missing:
            fail(
                f"case {case.case_id}: no resolved ticket of scenario {missing[0]!r} in "
                f"{case.tenant}'s history"
            )
        labels[case.case_id] = _relevant(data, case.scenarios)
    return labels


async def run_eval(cases: list[EvalCase], *, replay: date | None = None) -> EvalRun:
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
        datasets: dict[str, DemoDataset] = {}
        outcomes = {tenant: OutcomeRecord() for tenant in TENANTS}
        history: list[EvalQuery] = []
        for tenant in TENANTS:
            datasets[tenant], queries = await _tenant(
                pool, admin, tenant, embedder, replay, runtime.owner_url, outcomes[tenant]
            )
            history += queries
        labels = _labels(cases, datasets)
        case_queries = await _case_queries(pool, cases, datasets, embedder, outcomes)
        modes = await evaluate(pool, cases, labels, embedder) if cases else {}
    finally:
        await pool.close()
    if replay is None:
        train = history + [q for q in case_queries if q.split == "train"]
        parts = {
            "holdout": [q for q in case_queries if q.split == "holdout"],
            "train (fitted on)": [q for q in case_queries if q.split == "train"],
        }
    else:
        train = [q for q in history if q.split == "before"]
        parts = {
            f"history from {replay}": [q for q in history if q.split == "after"],
            "holdout": [q for q in case_queries if q.split == "holdout"],
        }
    if not train:
        fail("nothing to fit on: no replayed ticket before the replay date")
    fitted = fit_model(
        [q.labelled() for q in train],
        prior=None,
        settings=FitSettings(),
        kb=[q.kb_judged() for q in train if q.kb_relevant],
    )
    run = EvalRun(
        cases=len(cases), replay=replay, model=fitted.model, fit=fitted.report, modes=modes
    )
    for name, queries in parts.items():
        if queries:
            run.scored[name] = {
                "queries": len(queries),
                **score_modes(fitted.model, queries),
                "misses": misses(fitted.model, queries),
            }
    train_cases = [q for q in case_queries if q.split == "train"]
    if replay is None and train_cases:
        run.scored["train (out-of-fold)"] = out_of_fold(history, train_cases)
    return run
