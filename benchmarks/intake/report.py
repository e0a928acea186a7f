"""What the intake benchmark prints: medians per configuration, as ratios to bare uvicorn."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks.intake.configs import Config
from benchmarks.rig.report import fmt, print_table


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def aggregate(cfg: Config, passes: list[dict[str, Any]], nproc: int) -> dict[str, Any]:
    """Medians over every repetition of every pass of one configuration."""
    reps: list[Rep] = [r for p in passes for r in p["reps"]]
    accepted_total = sum(r.statuses.get("202", 0) for r in reps)
    rows = sum(p["rows"] for p in passes)
    errors = sum(n for r in reps for s, n in r.statuses.items() if s not in ("202",))
    total_issued = sum(r.issued for r in reps)
    opens = [p["open"] for p in passes if p.get("open")]
    return {
        "open_rate": median([o.throughput for o in opens]),
        "open_p50_ms": median([o.p50_ms for o in opens]),
        "open_p99_ms": median([o.p99_ms for o in opens]),
        "open_errors": sum(n for o in opens for s, n in o.statuses.items() if s != "202"),
        "name": cfg.name,
        "label": cfg.label,
        "pipeline_finished_per_s": median(
            [p["pipeline"]["finished_per_s"] for p in passes if p.get("pipeline")]
        ),
        "pipeline": [p.get("pipeline") for p in passes],
        "backlog": [p.get("backlog") for p in passes],
        "startup_s": round(statistics.mean(p["startup_s"] for p in passes), 1),
        "kind": cfg.kind,
        "throughput": median([r.throughput for r in reps]),
        "throughputs": [round(r.throughput, 1) for r in reps],
        "p50_ms": median([r.p50_ms for r in reps]),
        "p99_ms": median([r.p99_ms for r in reps]),
        "errors": errors,
        "statuses": [r.statuses for r in reps],
        "durable": rows == accepted_total,
        "rows": rows,
        "accepted": accepted_total,
        "server_cpu_ms_per_req": median([1000 * r.server_cpu_s / max(1, r.issued) for r in reps]),
        "server_cores": median([r.server_cpu_s / r.loadgen_wall_s for r in reps]),
        "loadgen_share": median([r.loadgen_cpu_s / (r.loadgen_wall_s * nproc) for r in reps]),
        "loadgen_cpu_ms_per_req": median([1000 * r.loadgen_cpu_s / max(1, r.issued) for r in reps]),
        "cpu_by_kind": {
            k: round(sum(r.cpu_by_kind.get(k, 0) for r in reps) / max(1, total_issued) * 1000, 3)
            for k in sorted({k for r in reps for k in r.cpu_by_kind})
        },
        "pids": passes[-1]["pids"],
        "profile": next((p["profile"] for p in passes if p["profile"]), None),
    }


def report(data: dict[str, Any]) -> str:
    results = data["results"]
    bare = [r for r in results if r["kind"] == "bare"]
    baseline = median([t for r in bare for t in r["throughputs"]]) if bare else None
    floor = median([t for r in results if r["kind"] == "floor" for t in r["throughputs"]])
    rows = []
    for r in results:
        ratio = (r["throughput"] / baseline) if baseline and r["throughput"] else None
        rows.append(
            [
                r["name"],
                fmt(r["throughput"], 0),
                "/".join(fmt(t, 0) for t in r["throughputs"]),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(ratio, 2) if r["kind"] != "bare" else "1 (baseline)",
                fmt(r["server_cpu_ms_per_req"], 2),
                fmt(r["server_cores"], 2),
                f"{100 * r['loadgen_share']:.0f} %",
                r["errors"],
                "yes" if r["durable"] else f"NO ({r['rows']} rows / {r['accepted']} 202s)",
                fmt(r.get("open_rate"), 0),
                fmt(r.get("open_p50_ms")),
                fmt(r.get("open_p99_ms")),
                fmt(r["throughput"] / floor, 2) if floor and r["throughput"] else "–",
                fmt(r.get("pipeline_finished_per_s")),
            ]
        )
    args = data["args"]
    text = print_table(
        f"Intake: {args['clients']} clients, {args['passes']} passes x {args['reps']} x "
        f"{args['seconds']} s per config (medians), {args['tenants']} tenants",
        [
            "config",
            "webhooks/s",
            "reps",
            "p50 ms",
            "p99 ms",
            "ratio to bare",
            "server CPU ms/req",
            "server cores",
            "loadgen CPU",
            "errors",
            "202 == rows",
            f"open loop @ {args['rate']:g}/s: achieved",
            "p50 ms",
            "p99 ms",
            "ratio to floor",
            "pipeline finished/s meanwhile",
        ],
        rows,
    )
    kinds = sorted(
        {k for r in results for k in r["cpu_by_kind"]},
        key=lambda k: -max(r["cpu_by_kind"].get(k, 0) for r in results),
    )
    kinds = [k for k in kinds if max(r["cpu_by_kind"].get(k, 0) for r in results) >= 0.05]
    text += print_table(
        "Server CPU ms per webhook by process kind (all repetitions)",
        ["config", *kinds],
        [[r["name"], *(fmt(r["cpu_by_kind"].get(k), 2) for k in kinds)] for r in results],
    )
    for r in results:
        if r.get("profile"):
            for target, summary in r["profile"].items():
                text += print_table(
                    f"py-spy {r['name']} / {target}: where the CPU goes "
                    f"({summary['samples']} samples)",
                    ["layer", "% of samples"],
                    summary["layers"][:10],
                )
                text += print_table(
                    f"py-spy {r['name']} / {target}: top self-time functions",
                    ["function", "%"],
                    summary["leaves"][:10],
                )
    return text


@dataclass
class Rep:
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int]
    issued: int
    accepted: int
    loadgen_cpu_s: float
    loadgen_wall_s: float
    server_cpu_s: float
    cpu_by_kind: dict[str, float]
