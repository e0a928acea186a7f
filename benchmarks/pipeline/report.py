"""What the pipeline benchmark prints: throughput, latency, CPU and memory per configuration,
and each as a ratio to the floor (``benchmarks.pipeline.floor``) measured in the same run.

Absolute rates move from machine to machine and with the load of other users; a ratio to a
floor measured in the same run, on the same cores, at the same moment, moves far less.
"""

from __future__ import annotations

from typing import Any

from benchmarks.rig.report import (
    fmt,
    print_table,
)

FLOOR = "floor"
MIB = 2**20


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


def report(runs: list[dict[str, Any]]) -> str:
    first = runs[0]
    args = first["args"]
    nproc = first["machine"]["nproc"]
    rows = []
    for data in runs:
        for p in data["phases"]:
            marginal = p.get("marginal_cpu_ms_per_job")
            ceiling = ((nproc - data["idle_cores"]) * 1000 / marginal) if marginal else None
            rate = (
                f"{fmt(p['overall_rate'])} ({fmt(p['steady_rate'])})"
                if p["phase"] == "capacity"
                else fmt(p["overall_rate"])
            )
            rows.append(
                [
                    data["variant"],
                    p["phase"],
                    f"{p['offered']} @ {p['offered_rate'] or 'max'}/s",
                    f"{p['completed']}/{p['accepted']}",
                    ", ".join(
                        f"{k.replace('completed/', '')} {v}" for k, v in p["outcomes"].items()
                    ),
                    rate,
                    fmt(p["e2e_p50"], 2),
                    fmt(p["e2e_p95"], 2),
                    fmt(p["e2e_p99"], 2),
                    p["peak_running"],
                    fmt(p["cpu_ms_per_job"]),
                    fmt(marginal),
                    fmt(p["cores_used"], 2),
                    f"{fmt(data['idle_cores'], 2)}",
                    fmt(ceiling),
                    " ".join(f"{k[:3]}{v}" for k, v in p["replicas"].items()),
                ]
            )
    text = print_table(
        f"Pipeline: LLM {args['llm_latency']} s ±{args['jitter']} %, SDP {args['sdp_latency_ms']}"
        f" ms, {args['tenants']} tenants, per-tenant in-flight {args['per_tenant_inflight']}",
        [
            "config",
            "phase",
            "offered",
            "completed",
            "outcomes",
            "enh/s (capacity: all/wall (10-90 %))",
            "p50 s",
            "p95 s",
            "p99 s",
            "peak running",
            "CPU ms/enh",
            "marginal CPU ms/enh",
            "cores used",
            "idle cores",
            "CPU ceiling enh/s",
            "replicas",
        ],
        rows,
    )
    text += floor_table(runs)
    text += print_table(
        "Where the end-to-end time goes (p50 / p95 seconds)",
        [
            "config",
            "phase",
            "queued (received -> claimed)",
            "context",
            "synthesis (LLM)",
            "write-back",
        ],
        [
            [
                data["variant"],
                p["phase"],
                *(
                    f"{fmt(p['stages'][k]['p50'], 2)} / {fmt(p['stages'][k]['p95'], 2)}"
                    for k in ("queued", "context", "synthesis", "writeback")
                ),
            ]
            for data in runs
            for p in data["phases"]
        ],
    )
    for phase in ("latency", "capacity"):
        found = {
            d["variant"]: next((p for p in d["phases"] if p["phase"] == phase), None) for d in runs
        }
        per = {k: v for k, v in found.items() if v}
        if not per:
            continue
        kinds = sorted(
            {k for p in per.values() for k in p["cpu_ms_by_kind"]},
            key=lambda k: -max(p["cpu_ms_by_kind"].get(k, 0) for p in per.values()),
        )
        text += print_table(
            f"CPU ms per enhancement by process kind ({phase} phase)",
            ["process kind", *per],
            [
                [k, *(fmt(p["cpu_ms_by_kind"].get(k), 1) for p in per.values())]
                for k in kinds
                if max(p["cpu_ms_by_kind"].get(k, 0) for p in per.values()) >= 0.5
            ]
            + [["TOTAL", *(fmt(p["cpu_ms_per_job"], 1) for p in per.values())]],
        )
    for data in runs:
        for p in data["phases"]:
            for target, summary in (p.get("profile") or {}).items():
                text += print_table(
                    f"py-spy {data['variant']} {p['phase']} / {target} "
                    f"({summary['samples']} samples): layers",
                    ["layer", "% of samples"],
                    summary["layers"][:8],
                )
    mem_rows = []
    for data in runs:
        idle = data["memory_idle"]
        mem_rows.append(
            [
                data["variant"],
                "idle (after warm-up)",
                fmt(idle["rss_bytes"] / MIB, 0),
                fmt(idle["pss_bytes"] / MIB, 0),
            ]
        )
        for p in data["phases"]:
            if p.get("memory_mid"):
                mem_rows.append(
                    [
                        data["variant"],
                        f"under load ({p['phase']}, mid-phase)",
                        fmt(p["memory_mid"]["rss_bytes"] / MIB, 0),
                        fmt(p["memory_mid"]["pss_bytes"] / MIB, 0),
                    ]
                )
    text += print_table(
        "Resident memory of the run (all processes)",
        ["config", "when", "RSS sum MiB", "PSS sum MiB"],
        mem_rows,
    )
    best = max(
        (p["overall_rate"] or 0 for d in runs for p in d["phases"] if p["phase"] == "capacity"),
        default=0,
    )
    if best:
        line = (
            "Replaced design (Celery prefork, 4 concurrent jobs per worker, ~2 jobs/s per "
            f"worker at 2 s LLM latency): {best:.1f} enh/s would take ~{best / 2:.0f} prefork "
            "workers."
        )
        print(line)
        text += "\n" + line + "\n"
    return text
