"""Measure similar-ticket retrieval on a labelled set: full-text only, vector only, hybrid.

A set is JSON Lines, one new ticket per line::

    {"id": "eu-01", "tenant": "acme", "subject": "...", "description": "...",
     "scenario": "vpn_drops", "wording": "end-user", "split": "holdout", "category": "VPN"}

``scenario`` names a demo-data scenario (every resolved ticket of that scenario in that
tenant's history that records a fix is a right answer), or a list of them for a ticket about
two problems at once (a precedent of either is right); ``relevant`` (a list of ticket ids) may
be given instead. ``split`` is ``train`` (may be fitted on) or ``holdout`` (never fitted on;
the default). ``category`` is the SDP category the requester picked, when they picked one.
Recall@k is the share of cases with a right answer in the first k; MRR averages 1/rank of the
first right answer (0 when none is in the first ``depth``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from db.pool import tenant_transaction
from pipeline.retrieval.embeddings import Embedder, ticket_text
from pipeline.retrieval.hybrid import FusionWeights, HybridRetrieval, RetrievalQuery
from pipeline.text.ticket_text import html_to_text, salient_terms, tsquery_for

DEPTH = 10


class EvalSetError(ValueError):
    """The set file cannot be used; the message names the line and the field."""


SPLITS = ("train", "holdout")


@dataclass(frozen=True)
class EvalCase:
    case_id: str
    tenant: str
    subject: str
    description: str
    scenarios: tuple[str, ...]
    relevant: tuple[str, ...]
    wording: str = "unspecified"
    split: str = "holdout"
    category: str | None = None

    @property
    def scenario(self) -> str | None:
        return self.scenarios[0] if self.scenarios else None


def load_eval_set(path: Path) -> list[EvalCase]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise EvalSetError(f"cannot read {path}: {err.strerror}") from err
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:  # JSONDecodeError, or an integer too long to convert
            detail = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            raise EvalSetError(f"line {number}: not JSON ({detail})") from err
        if not isinstance(row, dict):
            raise EvalSetError(f"line {number}: must be a JSON object")
        for key in ("tenant", "subject"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise EvalSetError(f"line {number}: '{key}' must be a non-empty string")
        relevant = row.get("relevant", [])
        if not isinstance(relevant, list) or not all(isinstance(i, str) for i in relevant):
            raise EvalSetError(f"line {number}: 'relevant' must be a list of ticket ids")
        scenario = row.get("scenario")
        scenarios = [scenario] if isinstance(scenario, str) else scenario
        if scenarios is not None and (
            not isinstance(scenarios, list) or not all(isinstance(s, str) and s for s in scenarios)
        ):
            raise EvalSetError(f"line {number}: 'scenario' must be a name or a list of names")
        if not relevant and not scenarios:
            raise EvalSetError(f"line {number}: give 'scenario' or 'relevant'")
        split = row.get("split", "holdout")
        if split not in SPLITS:
            raise EvalSetError(f"line {number}: 'split' must be one of {', '.join(SPLITS)}")
        category = row.get("category")
        if category is not None and not isinstance(category, str):
            raise EvalSetError(f"line {number}: 'category' must be a string")
        cases.append(
            EvalCase(
                case_id=str(row.get("id", number)),
                tenant=row["tenant"],
                subject=row["subject"],
                description=html_to_text(str(row.get("description") or "")),
                scenarios=tuple(scenarios or ()),
                relevant=tuple(relevant),
                wording=str(row.get("wording", "unspecified")),
                split=split,
                category=category or None,
            )
        )
    if not cases:
        raise EvalSetError(f"{path} holds no cases")
    return cases


@dataclass
class ModeScore:
    mode: str
    cases: int = 0
    hits_at_1: int = 0
    hits_at_5: int = 0
    reciprocal_ranks: float = 0.0
    misses: list[str] = field(default_factory=list)

    def add(self, case_id: str, rank: int | None) -> None:
        self.cases += 1
        if rank is None:
            self.misses.append(case_id)
            return
        self.hits_at_1 += rank == 1
        self.hits_at_5 += rank <= 5
        self.reciprocal_ranks += 1 / rank
        if rank > 1:
            self.misses.append(f"{case_id}@{rank}")

    def as_dict(self) -> dict[str, object]:
        n = self.cases or 1
        return {
            "mode": self.mode,
            "cases": self.cases,
            "recall_at_1": round(self.hits_at_1 / n, 4),
            "recall_at_5": round(self.hits_at_5 / n, 4),
            "mrr": round(self.reciprocal_ranks / n, 4),
            "not_first": self.misses,
        }


MODES: dict[str, FusionWeights] = {
    "fulltext": FusionWeights(fulltext=1.0, vector=0.0),
    "vector": FusionWeights(fulltext=0.0, vector=1.0),
}


async def evaluate(
    pool: asyncpg.Pool,
    cases: Sequence[EvalCase],
    relevant_for: Mapping[str, set[str]],
    embedder: Embedder,
    *,
    hybrid: HybridRetrieval | None = None,
) -> dict[str, ModeScore]:
    """Rank each case's tenant history three ways; ``relevant_for[case_id]`` = right ids."""
    hybrid = hybrid or HybridRetrieval()
    modes = {
        name: HybridRetrieval(
            candidates=hybrid.candidates,
            min_similarity=hybrid.min_similarity,
            weights=weights,
            method=hybrid.method,
            diversity=hybrid.diversity,
        )
        for name, weights in MODES.items()
    }
    modes["hybrid"] = hybrid
    scores = {name: ModeScore(name) for name in modes}
    vectors = await embedder.embed([ticket_text(c.subject, c.description) for c in cases])
    for case, vector in zip(cases, vectors, strict=True):
        query = RetrievalQuery(
            tsquery=tsquery_for(salient_terms(case.subject, case.description)),
            vector=vector,
            model=embedder.model,
            exclude_ticket="",
        )
        right = relevant_for[case.case_id]
        for name, retrieval in modes.items():
            async with tenant_transaction(pool, case.tenant) as conn:
                found = await retrieval.tickets(conn, query, limit=DEPTH)
            ranks = [i for i, t in enumerate(found, start=1) if t.ticket_id in right]
            scores[name].add(case.case_id, ranks[0] if ranks else None)
    return scores
