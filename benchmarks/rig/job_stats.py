"""Figures computed from finished enhancement jobs' rows (``local_stack.results``):
end-to-end seconds, per-stage percentiles and the steady completion rate."""

from __future__ import annotations

from typing import Any

from benchmarks.rig.report import percentile


def e2e_seconds(rows: list[dict[str, Any]]) -> list[float]:
    return [
        float(r["finished"]) - float(r["received"])
        for r in rows
        if r["status"] == "completed" and r["finished"] is not None
    ]


def stage_breakdown(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """p50/p95 seconds of each stage: waiting to be claimed, context, synthesis, write-back."""
    stages: dict[str, list[float]] = {"queued": [], "context": [], "synthesis": [], "writeback": []}
    for r in rows:
        if r["status"] != "completed":
            continue
        if r.get("started") is not None:
            stages["queued"].append(float(r["started"]) - float(r["received"]))
        for key in ("context", "synthesis", "writeback"):
            value = (r.get("stage_timings") or {}).get(key)
            if value is not None:
                stages[key].append(float(value))
    return {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in stages.items()}


def untimed_seconds(row: dict[str, Any]) -> float:
    """Claim to finish minus the timed stages: the hand-offs and queues no stage measures."""
    timed = sum(
        float((row.get("stage_timings") or {}).get(k) or 0)
        for k in ("context", "synthesis", "writeback")
    )
    return float(row["finished"]) - float(row["started"]) - timed


def steady_rate(rows: list[dict[str, Any]], low: float = 0.1, high: float = 0.9) -> float | None:
    """Completions per second between the ``low`` and ``high`` fractions of completions."""
    ends = sorted(float(r["finished"]) for r in rows if r["finished"] is not None)
    if len(ends) < 10:
        return None
    i, j = int(len(ends) * low), int(len(ends) * high) - 1
    span = ends[j] - ends[i]
    return (j - i) / span if span > 0 else None
