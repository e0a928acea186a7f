"""The soak's tables: deliveries, the timeline, growth per process kind and per table, latency
per quarter, the faults, and the verdict per goal."""

from __future__ import annotations

from typing import Any

from benchmarks.rig.report import fmt, print_table
from benchmarks.soak.analysis import (
    FLAT_COUNT_H,
    FLAT_SHARE_H,
    P95_TOLERANCE,
    RSS_GOAL_MB_H,
    judged_on,
)


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("pass" if ok else "FAIL")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def verdicts(data: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(goal, what was measured, passed) for each goal of the soak."""
    kinds = {name: k for name, k in data["kinds"].items() if k["judged_on"]}
    worst = max(
        kinds,
        key=lambda name: kinds[name][kinds[name]["judged_on"]]["growth_h"] or 0.0,
        default=None,
    )
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
            f"memory growth <= {RSS_GOAL_MB_H:g} MB/h per process kind after the warm-up "
            "(RSS; PostgreSQL PSS)",
            f"largest: {worst} {fmt(kinds[worst][kinds[worst]['judged_on']]['growth_h'])} MB/h"
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


def _by_memory(item: tuple[str, dict[str, Any]]) -> float:
    return -float(item[1]["rss_mb"]["last"])


def _why_not_judged(name: str) -> str:
    return "not the service" if judged_on(name) is None else "comes and goes"


def _kind_row(name: str, k: dict[str, Any]) -> list[str]:
    memory = k["judged_on"] or "rss_mb"
    n = fmt(k["n"], 0) if k["n_range"][0] == k["n_range"][1] else "{}-{}".format(*k["n_range"])
    longest = k["longest"]
    return [
        name if k["judged_on"] else f"{name} ({_why_not_judged(name)})",
        n,
        fmt(k[memory]["first"], 0),
        fmt(k[memory]["last"], 0),
        fmt(k[memory]["growth_h"], 1),
        fmt(k["rss_mb"]["growth_h"], 1),
        fmt(k["pss_mb"]["growth_h"], 1),
        fmt(longest["growth_h"], 1) if longest else "–",
        fmt(k["fds"]["median"], 0),
        fmt(k["fds"]["growth_h"], 1),
        fmt(k["threads"]["median"], 0),
        fmt(k["threads"]["growth_h"], 1),
        _mark(k["rss_ok"]),
        _mark(k["fds_ok"]),
        _mark(k["threads_ok"]),
    ]


def retention_rows(data: dict[str, Any]) -> list[list[str]]:
    """Per retained table at the end: rows, bytes, rows purged and the oldest row's age."""
    last = next((s["database"] for s in reversed(data["samples"]) if s.get("database")), None)
    if not last:
        return []
    rows = []
    for table, figures in sorted((last.get("retention") or {}).items()):
        size = last["tables"].get(table, {})
        oldest = figures["oldest_s"]
        rows.append(
            [
                table,
                size.get("rows", "–"),
                fmt(size.get("heap_mb", 0) + size.get("index_mb", 0), 2),
                figures["purged"],
                "–" if oldest is None else _minutes(oldest),
            ]
        )
    return rows


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
        purged = (db.get("retention") or {}).get("enhancements", {}).get("purged", "–")
        processes = s.get("processes") or {}
        logs = s.get("log_bytes") or {}
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
                purged,
                fmt(db.get("database_mb"), 1),
                fmt(sum(logs.values()) / 1e6, 1),
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
            "jobs purged",
            "DB MB",
            "logs MB",
            "faults",
        ],
        rows,
    )
    text += print_table(
        f"Growth per hour after the {_minutes(args['warmup'])}-minute warm-up, per process kind: "
        "memory summed over the kind's processes (PostgreSQL's judged on PSS, the others on "
        f"RSS); fds and threads per process, flat when growth <= max({FLAT_COUNT_H:g}, "
        f"{FLAT_SHARE_H:.0%} of the median) per hour",
        [
            "process kind",
            "n",
            "MB first",
            "MB last",
            "MB/h",
            "RSS MB/h",
            "PSS MB/h",
            "longest-lived process MB/h",
            "fds",
            "fds/h",
            "threads",
            "threads/h",
            "memory",
            "fds",
            "threads",
        ],
        [_kind_row(name, k) for name, k in sorted(data["kinds"].items(), key=_by_memory)],
    )
    text += print_table(
        f"End-to-end latency per quarter of the run after the {_minutes(args['warmup'])}-minute "
        "warm-up, jobs no fault touched (received neither "
        f"during a fault nor within {data['fault_margin_s']:.0f} s after it)",
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
    logs = data["log_mb_h"]
    text += print_table(
        f"Retained tables from {_minutes(data['tables_from_s'])} min (once retention applies); "
        f"logs grew {fmt(logs['ray'])} MB/h (Ray) and {fmt(logs['postgres'], 2)} MB/h "
        "(PostgreSQL)",
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
        "Retention at the end of the run",
        ["table", "rows", "MB", "rows purged", "oldest row, minutes"],
        retention_rows(data),
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
