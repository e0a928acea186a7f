"""The second stage's features, from the rows the candidate query returns."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.retrieval.ranking.features import (
    FEATURE_NAMES,
    build_candidates,
    resolution_is_fix,
    spelling_overlap,
    with_relative,
)
from pipeline.text.ticket_text import letter_trigrams as trigrams


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("No response from the user after three reminders; closed.", 0.0),
        ("Duplicate of an existing ticket, closed.", 0.0),
        ("User reports it works again, closing.", 0.0),
        ("Could not reproduce; the user will open a new ticket if it happens again.", 0.0),
        ("Closed at the requester's request.", 0.0),
        ("ok", 0.0),
        ("Raised the DPD interval to 60 s on the gateway; stable since.", 1.0),
        # a long resolution that mentions such words says what was done
        (
            "Cleared the cached password in the VPN client and reconnected; it works again, "
            "verified with the user over ten minutes and closed the ticket after the test.",
            1.0,
        ),
    ],
)
def test_resolution_is_fix(text: str, fix: float) -> None:
    assert resolution_is_fix(text) == fix


def test_build_candidates_computes_every_feature() -> None:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    row = {
        "subject": "VPN drops",
        "description": "The tunnel disconnects every ten minutes.",
        "resolution": "Raised the DPD interval to 60 s on the gateway.",
        "resolved_at": now - timedelta(days=90),
        "fulltext": 0.4,
        "query_terms": 4,
        "subject_hits": 2,
        "description_hits": 1,
        "resolution_hits": 0,
        "same_category": True,
        "shared_ip": False,
        "shown_before": 3,
        "right_before": 2,
        "embedding": [0.6, 0.8],
    }
    thin = dict(row, embedding=None, resolved_at=None, query_terms=0, resolution="")
    del thin["description"]  # a row without the column (older callers): the subject alone
    query = "vpn keeps disconecting\nThe tunnel drops all the time"
    candidates = build_candidates(
        [("a", 0.5), ("gone", 0.45), ("b", 0.25)],
        {"a": row, "b": thin},
        query_vector=[1.0, 0.0],
        as_of=now,
        query_trigrams=trigrams(query),
    )
    spelling_a = spelling_overlap(
        trigrams(query), trigrams(f"{row['subject']} {row['description']}")
    )
    spelling_b = spelling_overlap(trigrams(query), trigrams("VPN drops"))
    assert [c.ticket_id for c in candidates] == ["a", "b"]  # "gone" has no row any more
    a = dict(zip(FEATURE_NAMES, candidates[0].features, strict=True))
    assert a == {
        "fused": 0.5,
        "relative": 1.0,
        "fulltext": 0.4,
        "vector": 0.6,
        "subject": 0.5,
        "description": 0.25,
        "resolution": 0.0,
        "shared_ip": 0.0,
        "same_category": 1.0,
        "recency": round(math.exp(-0.5), 6),
        "real_fix": 1.0,
        "proved_right": 0.2,  # (2 right − 1 wrong) / (3 + 2)
        # against the best of this query's candidates (here: a itself; no resolution matched)
        "vector_vs_best": 1.0,
        "fulltext_vs_best": 1.0,
        "subject_vs_best": 1.0,
        "description_vs_best": 1.0,
        "resolution_vs_best": 0.0,
        "spelling": round(spelling_a, 6),
        "spelling_vs_best": 1.0,
    }
    b = dict(zip(FEATURE_NAMES, candidates[1].features, strict=True))
    assert (b["relative"], b["vector"], b["subject"], b["recency"], b["real_fix"]) == (
        0.5,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert candidates[0].feature("vector") == 0.6 and candidates[1].embedding is None
    assert 0 < spelling_b < spelling_a
    assert b["spelling"] == round(spelling_b, 6)
    assert b["spelling_vs_best"] == pytest.approx(spelling_b / spelling_a, abs=1e-5)


def test_spelling_overlap_reads_typos_and_loan_words() -> None:
    def overlap(a: str, b: str) -> float:
        return spelling_overlap(trigrams(a), trigrams(b))

    assert overlap("VPN disconnecting", "vpn DISCONNECTING!") == 1.0  # case, punctuation
    assert overlap("vpn keeps disconecting", "VPN keeps disconnecting") > 0.8  # a typo
    assert overlap("Netzwerk down", "network down") > overlap("Netzwerk down", "printer jam")
    assert overlap("Drucker offline", "Druckauftrag hängt") > 0.2  # loan words, umlauts kept
    assert overlap("printer", "mailbox") == 0.0
    assert overlap("", "anything") == overlap("!!", "anything") == 0.0


def test_relative_features_compare_a_candidate_with_the_querys_best() -> None:
    def row(**values: float) -> tuple[float, ...]:
        return tuple(values.get(name, 0.0) for name in FEATURE_NAMES)

    # stale or missing relative columns (a note stored before they existed) are re-derived
    rows = with_relative(
        [row(vector=0.8, subject=0.5, vector_vs_best=0.3), row(vector=0.4, subject=0.25)]
    )
    first, second = (dict(zip(FEATURE_NAMES, r, strict=True)) for r in rows)
    assert (first["vector_vs_best"], second["vector_vs_best"]) == (1.0, 0.5)
    assert (first["subject_vs_best"], second["subject_vs_best"]) == (1.0, 0.5)
    assert first["fulltext_vs_best"] == second["fulltext_vs_best"] == 0.0  # none matched
    assert second["vector"] == 0.4  # the base columns are kept
    assert with_relative([]) == []
