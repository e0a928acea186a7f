"""The soak's tables: deliveries, the timeline, growth per process kind and per table, latency
per quarter, the faults, and the verdict per goal."""

from __future__ import annotations

from typing import Any

from benchmarks.rig.report import fmt, print_table
from benchmarks.soak.analysis import FLAT_COUNT_H, FLAT_SHARE_H, P95_TOLERANCE, RSS_GOAL_MB_H


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("pass" if ok else "FAIL")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def verdicts(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, passed) for each goal of the soak."""
    kinds = data["kinds"]
    worst = max(kinds, key=lambda name: kinds[name]["rss_mb"]["growth_h"] or 0.0, default=None)
    rss_ok = all(k["rss_ok"] is not False for k in kinds.values()) if kinds else None
    not_flat = sorted(
        f"{name} ({'fds' if not k['fds_ok'] else 'threads'})"
        for name, k in kinds.items()
        if k["fds_ok"] is False or k["threads_ok"] is False
    )
    later = [q for q in data["quarters"][1:] if q["ok"] is not None]
    worst_q = max(later, key=lambda q: abs(q["vs_first"]), default=None)
    d = data["deliveries"]
    return [
        (
            f"RSS growth <= {RSS_GOAL_MB_H:g} MB/h per process kind, after the warm-up",
            f"largest: {worst} {fmt(kinds[worst]['rss_mb']['growth_h'])} MB/h"
            if worst
            else "no samples",
            rss_ok,
        ),
        (
            "file descriptors and threads flat",
            "all flat" if not not_flat else "growing: " + ", ".join(not_flat),
            (not not_flat) if kinds else None,
        ),
        (
            f"p95 within +-{P95_TOLERANCE:.0%} of the first quarter's (jobs no fault touched)",
            f"worst: quarter {worst_q['quarter']} {worst_q['vs_first']:+.1%}"
            if worst_q
            else "too few jobs",
            all(q["ok"] for q in later) if later else None,
        ),
        (
            "0 webhooks lost",
            f"{d['lost']} lost, {d['refused']} never accepted of {d['sent']}",
            d["lost"] == 0 and d["refused"] == 0,
        ),
        ("0 duplicate notes", f"{d['duplicate_notes']}", d["duplicate_notes"] == 0),
    ]


def report(data: dict[str, Any]) -> str:
    args = data["args"]
    d = data["deliveries"]
    text = print_table(
        f"Soak: {args['duration']:.0f} s at {args['rate']:g} webhooks/s over {args['tenants']} "
        f"tenants, LLM {args['llm_latency']:g} s +-{args['jitter']:g} %, retention "
        f"{args['retention_minutes']:g} min",
        [
            "sent",
            "accepted",
            "accepted after a retry",
            "never accepted",
            "lost",
            "failed jobs",
            "duplicate notes",
            "jobs retried",
            "feedback sent / failed",
        ],
        [
            [
                d["sent"],
                d["accepted"],
                d["accepted_after_retry"],
                d["refused"],
                d["lost"],
                d["failed"],
                d["duplicate_notes"],
                d["retried_jobs"],
                f"{data['feedback']['sent']} / {data['feedback']['failed']}",
            ]
        ],
    )
    samples = {s["t"]: s for s in data["samples"]}
    rows = []
    for w in data["windows"]:
        s = samples.get(w["t"], {})
        db = s.get("database") or {}
        jobs = (db.get("tables") or {}).get("enhancements") or {}
        processes = s.get("processes") or {}
        rows.append(
            [
                _minutes(w["t"]),
                w["sent"],
                w["refused_deliveries"],
                w["completed"],
                w["context_only"],
                fmt(w["e2e_p50"], 2),
                fmt(w["e2e_p95"], 2),
                fmt(w["ack_p95_ms"], 0),
                fmt(sum(k["rss_mb"] for k in processes.values()), 0),
                sum(k["fds"] for k in processes.values()),
                db.get("connections", "–"),
                jobs.get("rows", "–"),
                fmt(db.get("database_mb"), 1),
                fmt(s.get("log_bytes", 0) / 1e6, 1),
                ", ".join(sorted(set(w["faults"]))),
            ]
        )
    text += print_table(
        "Timeline (each row: the interval ending at t)",
        [
            "t min",
            "sent",
            "refused deliveries",
            "completed",
            "context-only",
            "e2e p50 s",
            "e2e p95 s",
            "ack p95 ms",
            "RSS MB",
            "fds",
            "DB conns",
            "job rows",
            "DB MB",
            "logs MB",
            "faults",
        ],
        rows,
    )
    text += print_table(
        f"Growth per hour after the {_minutes(args['warmup'])}-minute warm-up, per process kind "
        f"(flat: |growth| <= max({FLAT_COUNT_H:g}, {FLAT_SHARE_H:.0%} of the median) per hour)",
        [
            "process kind",
            "n",
            "RSS MB first",
            "RSS MB last",
            "RSS MB/h",
            "PSS MB/h",
            "fds",
            "fds/h",
            "threads",
            "threads/h",
            "RSS",
            "fds",
            "threads",
        ],
        [
            [
                name,
                fmt(k["n"], 0),
                fmt(k["rss_mb"]["first"], 0),
                fmt(k["rss_mb"]["last"], 0),
                fmt(k["rss_mb"]["growth_h"], 1),
                fmt(k["pss_mb"]["growth_h"], 1),
                fmt(k["fds"]["median"], 0),
                fmt(k["fds"]["growth_h"], 1),
                fmt(k["threads"]["median"], 0),
                fmt(k["threads"]["growth_h"], 1),
                _mark(k["rss_ok"]),
                _mark(k["fds_ok"]),
                _mark(k["threads_ok"]),
            ]
            for name, k in sorted(data["kinds"].items(), key=lambda kv: -kv[1]["rss_mb"]["last"])
        ],
    )
    text += print_table(
        "End-to-end latency per quarter of the run, jobs no fault touched (by receipt)",
        ["quarter", "jobs", "p50 s", "p95 s", "p95 vs first quarter", "within +-10 %"],
        [
            [
                q["quarter"],
                q["jobs"],
                fmt(q["p50"], 2),
                fmt(q["p95"], 2),
                "–" if q["vs_first"] is None else f"{q['vs_first']:+.1%}",
                _mark(q["ok"]),
            ]
            for q in data["quarters"]
        ],
    )
    text += print_table(
        f"Retained tables from {_minutes(data['tables_from_s'])} min (once retention applies); "
        f"logs grew {fmt(data['log_mb_h'])} MB/h",
        ["table", "rows first", "rows last", "rows/h", "MB first", "MB last", "MB/h"],
        [
            [
                name,
                fmt(t["rows_first"], 0),
                fmt(t["rows_last"], 0),
                fmt(t["rows_growth_h"], 0),
                fmt(t["mb_first"], 2),
                fmt(t["mb_last"], 2),
                fmt(t["mb_growth_h"], 2),
            ]
            for name, t in data["tables"].items()
        ],
    )
    text += print_table(
        "Faults",
        ["fault", "phase", "at min", "result"],
        [
            [
                e["fault"]["kind"]
                if e["fault"]["kind"] != "kill"
                else f"kill {e['fault']['target']}",
                e["phase"],
                _minutes(e["t"]),
                ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("fault", "phase", "t")),
            ]
            for e in data["events"]
        ],
    )
    text += print_table(
        "Verdict",
        ["goal", "measured", "verdict"],
        [[g, m, _mark(ok)] for g, m, ok in verdicts(data)],
    )
    return text
