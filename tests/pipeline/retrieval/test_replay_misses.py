"""`ai-agents eval retrieval --misses`: why a note does not show a right precedent first."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.retrieval.ranking.features import FEATURE_NAMES, Candidate
from pipeline.retrieval.ranking.model import RankingModel, RelevanceBar
from pipeline.retrieval.replay import EvalQuery, misses

NOW = datetime(2026, 1, 15, tzinfo=UTC)
# one weight on `subject`, one on `spelling`: a candidate's probability is readable by hand
WEIGHTS = tuple(
    3.0 if name == "subject" else 1.0 if name == "spelling" else 0.0 for name in FEATURE_NAMES
)


def _candidate(ticket_id: str, subject: float, spelling: float = 0.0) -> Candidate:
    values = {"subject": subject, "spelling": spelling, "fused": 0.5}
    return Candidate(
        ticket_id=ticket_id,
        subject=f"ticket {ticket_id}",
        resolution="Fixed it.",
        resolved_at=NOW,
        fused=0.5,
        features=tuple(values.get(name, 0.0) for name in FEATURE_NAMES),
    )


def _query(query_id: str, relevant: set[str], *candidates: Candidate) -> EvalQuery:
    return EvalQuery(
        query_id=query_id,
        tenant="acme",
        split="holdout",
        wording="typos",
        as_of=NOW,
        candidates=list(candidates),
        relevant=relevant,
        subject=f"new ticket {query_id}",
    )


def test_each_miss_says_why() -> None:
    model = RankingModel(
        weights=WEIGHTS,
        intercept=-2.0,
        bar=RelevanceBar(0.3, 0.0),
        kb_bar=RelevanceBar(0.0, 0.0),
        calibration=(1.0, 0.0, 0.0),
    )
    queries = [
        _query("hit", {"a"}, _candidate("a", 1.0), _candidate("b", 0.2)),
        _query("none found", {"z"}, _candidate("a", 1.0)),
        # b's subject shares more words; a's spelling is closer but weighs less
        _query("out-ranked", {"a"}, _candidate("a", 0.2, spelling=0.9), _candidate("b", 1.0)),
        # the right one is first, but too weak for the bar's absolute 0.3: a note without any
        _query("cut", {"a"}, _candidate("a", 0.1), _candidate("b", 0.0)),
    ]
    rows = {row["query"]: row for row in misses(model, queries)}
    assert set(rows) == {"none found", "out-ranked", "cut"}
    assert (rows["none found"]["cause"], rows["none found"]["right_rank"]) == (
        "not retrieved",
        None,
    )
    out = rows["out-ranked"]
    assert (out["cause"], out["right_rank"], out["first"]["ticket_id"]) == ("out-ranked", 2, "b")
    assert out["out_ranked_by"] == ["subject"]  # spelling favours the right one: not listed
    assert out["shown"] == [False, True]
    cut = rows["cut"]
    assert (cut["cause"], cut["right_rank"], cut["shown"], cut["out_ranked_by"]) == (
        "cut by the bar",
        1,
        [],
        [],
    )
