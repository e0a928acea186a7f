"""The pipeline benchmark's comparison with its floor (``benchmarks.pipeline.floor``).

Absolute rates move from machine to machine and with the load of other users; a ratio to a
floor measured in the same run, on the same cores, at the same moment, moves far less.
"""

from __future__ import annotations

from typing import Any

from benchmarks.rig.report import fmt, print_table

FLOOR = "floor"


def ratios_to_floor(runs: list[dict[str, Any]]) -> None:
    """Add ``ratio_to_floor`` to each phase of every run when the floor ran too: throughput
    (all/wall and 10-90 %) and CPU per enhancement as the product's figure over the floor's."""
    floor = next((d for d in runs if d["variant"] == FLOOR), None)
    if floor is None:
        return
    base = {p["phase"]: p for p in floor["phases"]}

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    for data in runs:
        for p in data["phases"]:
            f = base.get(p["phase"])
            if f is not None:
                p["ratio_to_floor"] = {
                    key: ratio(p.get(key), f.get(key))
                    for key in (
                        "overall_rate",
                        "steady_rate",
                        "cpu_ms_per_job",
                        "marginal_cpu_ms_per_job",
                    )
                }


def floor_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        [
            d["variant"],
            p["phase"],
            fmt(p["overall_rate"]),
            fmt(p["ratio_to_floor"]["overall_rate"], 2),
            fmt(p["ratio_to_floor"]["steady_rate"], 2),
            fmt(p["cpu_ms_per_job"]),
            fmt(p["ratio_to_floor"]["cpu_ms_per_job"], 2),
            fmt(p["ratio_to_floor"]["marginal_cpu_ms_per_job"], 2),
        ]
        for d in runs
        for p in d["phases"]
        if p.get("ratio_to_floor")
    ]
    if not rows:
        return ""
    return print_table(
        "Against the floor (one asyncio process, same work, no Ray; same run): throughput "
        "ratio (goal >= 0.5 at capacity) and CPU per enhancement ratio (lower is better)",
        [
            "config",
            "phase",
            "enh/s",
            "x floor enh/s",
            "x floor enh/s (10-90 %)",
            "CPU ms/enh",
            "x floor CPU/enh",
            "x floor marginal CPU/enh",
        ],
        rows,
    )
