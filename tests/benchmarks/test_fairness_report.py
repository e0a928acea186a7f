"""The fairness benchmark's work-conserving goal is judged against what the whole system did in
the run, not only against the same configuration with B added
(benchmarks.fairness.bench.run_most)."""

from __future__ import annotations

from typing import Any

from benchmarks.fairness.bench import report, run_most

STAGES = ("intake", "queued", "handoff", "context", "synthesis", "writeback")


def _result(cap: str, alone: float | None, shared: float | None) -> dict[str, Any]:
    """One configuration's result as measure_cap records it (B's figures made up)."""
    b = {
        "n": 20,
        "completed": 20,
        "p50": 2.1,
        "p95": 2.5,
        "stages": {k: {"p50": 0.1, "p95": 0.2} for k in STAGES},
    }
    return {
        "cap": cap,
        "alone": b,
        "under": b,
        "ratio": 1.0,
        "a_completed_during_b": 100,
        "a_rate_during_b": 5.0,
        "a_p50_during_b": 10.0,
        "a_backlog_left": 0,
        "pools": [],
        "work_conserving": {
            "alone_rate": alone,
            "shared_rate": shared,
            "share": alone / shared if alone and shared else None,
        },
    }


def test_the_most_any_configuration_did_is_the_yardstick() -> None:
    default, lower_cap = _result("fair", 40.0, 44.0), _result("fair@112", 25.0, 26.0)
    assert run_most([default, lower_cap]) == 44.0
    assert run_most([_result("fair", None, None)]) is None


def test_the_report_fails_a_configuration_that_holds_a_back() -> None:
    args = {
        "flood": 1000,
        "b_rate": 1.0,
        "b_seconds": 20.0,
        "llm_latency": 2.0,
        "pools": "product",
        "capacity_flood": 400,
    }
    results = [_result("fair", 40.0, 44.0), _result("fair@112", 25.0, 26.0)]
    text = report({"args": args, "results": results})
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in text.split("### Work-conserving")[1].split("###")[0].splitlines()
        if line.startswith("| fair")
    }
    assert "(44.0/s)" in text  # the yardstick: the most this run completed
    # the default: A alone 40 of 44 -> passes; the lower cap: 25 / 26 = 0.96 with B added,
    # but 25 of the 44 the system did -> fails
    assert rows["fair"][3:] == ["0.91", "yes"]
    assert rows["fair@112"][2:] == ["0.96", "0.57", "no"]
