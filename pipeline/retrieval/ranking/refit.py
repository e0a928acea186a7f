"""Refit the learned ranking from the outcomes the service recorded: the deployment's model
from every tenant's, and a tenant's own once it has enough.

A refit is run on demand (``ai-agents ranking fit``, by an operator or a scheduled job), not
inside the service: it is a few seconds of CPU that should not land on a serving replica at an
unpredictable time, and each refit is checked before it is installed.

For each scope (the deployment; each tenant with at least ``min_tenant_outcomes`` notes whose
outcome is known):

1. The labelled examples (``ranking_examples``: candidates labelled by the ticket's resolution,
   or not relevant when the note was voted down) are grouped per note, oldest first.
2. **Check**: a model is fitted on the older 80 % (pulled towards the model in use) and both
   it and the model in use are scored on the newest 20 %, which neither was fitted on: mean
   log-loss of the candidates' labels, and the ECE of the confidence.
3. It is installed — refitted on all of them — only when it is not worse on that log-loss
   (``force`` installs anyway); with fewer than ``MIN_CHECK`` checked notes it is installed
   as "not checked", the pull towards the model in use keeping it close.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import numpy as np

from db.pool import tenant_transaction
from db.repositories import ranking
from pipeline.note.confidence import calibrated
from pipeline.retrieval.ranking.features import FEATURE_NAMES, with_relative
from pipeline.retrieval.ranking.fitting import FitSettings, LabelledQuery, fit_model
from pipeline.retrieval.ranking.model import RankingModel, default_model
from pipeline.retrieval.ranking.quality import Judged, summarise
from pipeline.retrieval.ranking.store import RankingModels

REFIT = FitSettings(l2=10.0, calibration_l2=5.0)
CHECK_SHARE = 0.2
MIN_CHECK = 10  # checked notes below which a model is installed unchecked
MAX_ENHANCEMENTS = 20_000  # newest notes read per fit


@dataclass
class ScopeResult:
    scope: str  # deployment | tenant
    tenant: str | None
    notes: int  # notes with a known outcome
    installed: bool
    reason: str
    model_id: int | None = None
    checked_notes: int = 0
    before: dict[str, Any] = field(default_factory=dict)  # the model in use, on the check part
    after: dict[str, Any] = field(default_factory=dict)  # the new one, same notes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queries_from_rows(rows: Sequence[asyncpg.Record]) -> list[LabelledQuery]:
    """One labelled query per note, oldest note first; features mapped by name, the
    ``…_vs_best`` ones re-derived from the note's candidates (notes stored before they existed
    get them too)."""
    grouped: dict[Any, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["received_at"], str(r["enhancement_id"]), r["rank"])):
        names = list(row["feature_names"])
        values = dict(zip(names, row["features"], strict=False))
        query = grouped.setdefault(
            row["enhancement_id"],
            {"features": [], "labels": [], "inputs": row["confidence_inputs"] or {}},
        )
        query["features"].append(tuple(float(values.get(n, 0.0)) for n in FEATURE_NAMES))
        query["labels"].append(row["label"])
    out = []
    for enhancement_id, query in grouped.items():
        llm = query["inputs"].get("llm_confidence")
        out.append(
            LabelledQuery(
                group=str(enhancement_id),
                features=with_relative(query["features"]),
                labels=query["labels"],
                llm_confidence=float(llm) if isinstance(llm, int | float) else None,
            )
        )
    return out


def score(model: RankingModel, queries: Sequence[LabelledQuery]) -> dict[str, Any]:
    """Log-loss of the labelled candidates and the confidence's calibration, under ``model``."""
    losses: list[float] = []
    judged: list[Judged] = []
    for q in queries:
        x = np.asarray(q.features, dtype=np.float64)
        p = 1 / (1 + np.exp(-np.clip(x @ np.asarray(model.weights) + model.intercept, -35, 35)))
        order = np.argsort(-p)
        for i in order:
            y = q.labels[i]
            if y is not None:
                pi = min(max(float(p[i]), 1e-6), 1 - 1e-6)
                losses.append(-math.log(pi if y else 1 - pi))
        relevant = [bool(q.labels[i]) for i in order if q.labels[i] is not None]
        keeps = model.bar.keeps([float(p[i]) for i in order])
        judged.append(
            Judged(
                q.group,
                relevant,
                shown=[bool(q.labels[i]) for i, k in zip(order, keeps, strict=True) if k][:5],
                confidence=calibrated(model.calibration, float(p[order[0]]), q.llm_confidence),
            )
        )
    summary = summarise(judged)
    return {
        "log_loss": round(sum(losses) / len(losses), 4) if losses else None,
        **{k: summary.get(k) for k in ("cases", "recall_at_1", "precision", "ece")},
    }


async def _install(
    pool: asyncpg.Pool,
    tenant: str | None,
    queries: list[LabelledQuery],
    prior: RankingModel,
    *,
    force: bool,
    dry_run: bool,
) -> ScopeResult:
    scope = "tenant" if tenant else "deployment"
    cut = int(len(queries) * (1 - CHECK_SHARE))
    older, newest = queries[:cut], queries[cut:]
    result = ScopeResult(scope, tenant, len(queries), False, "", checked_notes=len(newest))
    if older and len(newest) >= MIN_CHECK:
        candidate = fit_model(older, prior=prior, settings=REFIT, scope=scope).model
        result.before, result.after = score(prior, newest), score(candidate, newest)
        worse = (result.after["log_loss"] or 0.0) > (result.before["log_loss"] or 0.0)
        if worse and not force:
            result.reason = (
                f"not installed: worse than the model in use ({prior.label}) on the newest "
                f"{len(newest)} notes (log-loss {result.after['log_loss']} > "
                f"{result.before['log_loss']})"
            )
            return result
        result.reason = "checked on the newest notes" + (" (forced)" if worse else "")
    else:
        result.reason = f"not checked: fewer than {MIN_CHECK} notes to check on"
    fitted = fit_model(queries, prior=prior, settings=REFIT, scope=scope)
    report = {
        **fitted.report,
        "check": {"before": result.before, "after": result.after},
        "prior": prior.label,
    }
    if dry_run:
        result.reason += "; dry run, nothing stored"
        return result
    if tenant is None:
        result.model_id = await ranking.store_deployment_model(
            pool, examples=fitted.model.examples, model=fitted.model.to_json(), report=report
        )
    else:
        async with tenant_transaction(pool, tenant) as conn:
            result.model_id = await ranking.store_tenant_model(
                conn,
                tenant,
                examples=fitted.model.examples,
                model=fitted.model.to_json(),
                report=report,
            )
    result.installed = True
    return result


async def refit(
    pool: asyncpg.Pool,
    *,
    tenants: Sequence[str],
    min_deployment_outcomes: int,
    min_tenant_outcomes: int,
    deployment: bool = True,
    force: bool = False,
    dry_run: bool = False,
) -> list[ScopeResult]:
    """Refit the deployment's model (``deployment``) and each of ``tenants`` that has enough
    notes with a known outcome; one result per scope, installed or why not."""
    models = RankingModels(pool, ttl_s=0)
    results = []
    if deployment:
        rows = await ranking.all_examples(pool, enhancements=MAX_ENHANCEMENTS)
        queries = queries_from_rows(rows)
        if len(queries) < min_deployment_outcomes:
            results.append(
                ScopeResult(
                    "deployment",
                    None,
                    len(queries),
                    False,
                    f"not enough outcomes: {len(queries)} notes, {min_deployment_outcomes} needed",
                )
            )
        else:
            current = await ranking.deployment_model(pool)
            prior = (
                default_model()
                if current is None
                else RankingModel.from_json(
                    current["model"], scope="deployment", model_id=current["id"]
                )
            )
            results.append(await _install(pool, None, queries, prior, force=force, dry_run=dry_run))
    for tenant in tenants:
        async with tenant_transaction(pool, tenant) as conn:
            rows = await ranking.tenant_examples(conn, enhancements=MAX_ENHANCEMENTS)
        queries = queries_from_rows(rows)
        if len(queries) < min_tenant_outcomes:
            results.append(
                ScopeResult(
                    "tenant",
                    tenant,
                    len(queries),
                    False,
                    f"not enough outcomes: {len(queries)} notes, {min_tenant_outcomes} needed; "
                    "ranked by the deployment's model",
                )
            )
            continue
        prior = await models.for_tenant(tenant)
        results.append(await _install(pool, tenant, queries, prior, force=force, dry_run=dry_run))
    return results
