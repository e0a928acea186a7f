"""What every benchmark script prints: the machine it ran on, markdown tables, the raw figures
as JSON when asked (``--json PATH``), the figures of finished jobs' rows (end-to-end seconds,
per-stage percentiles, the steady completion rate); and the options every pipeline-driving
script takes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil


def add_pipeline_options(parser: argparse.ArgumentParser, *, pools: bool = True) -> None:
    """The simulator and Ray options every pipeline-driving script takes."""
    parser.add_argument("--llm-latency", type=float, default=2.0)
    parser.add_argument("--jitter", type=float, default=20.0, help="LLM latency jitter, %%")
    parser.add_argument("--sdp-latency-ms", type=float, default=50.0)
    parser.add_argument("--num-cpus", type=int, default=0, help="Ray logical CPUs (0: nproc)")
    if pools:
        parser.add_argument(
            "--pools",
            choices=["product", "previous"],
            default="product",
            help="previous: the pool options before 2026-11-26 "
            "(benchmarks.pipeline.bench.PREVIOUS_POOLS)",
        )


def run_script(parse_args: Any, main_async: Any, report: Any, argv: list[str] | None) -> None:
    """``main()`` of a script whose ``main_async`` returns one result document."""
    args = parse_args(argv)
    data = asyncio.run(main_async(args))
    finish(data, data["machine"], report, args.json)


def finish(data: Any, machine: dict[str, Any], report: Any, json_path: str) -> None:
    """Every script's ending: the machine line, the tables, and the raw figures if asked."""
    print(f"\nmachine: {json.dumps(machine)}")
    report(data)
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=1, default=str))


def machine_info() -> dict[str, Any]:
    import ray

    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model,
        "ray": ray.__version__,
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def print_table(title: str, headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A GitHub-markdown table (also readable in a terminal); returned and printed."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    text = "\n".join(
        [
            f"\n### {title}\n",
            line(headers),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(r) for r in cells),
        ]
    )
    print(text, flush=True)
    return text


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


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
