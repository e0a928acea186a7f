"""What the soak's samples say: growth per hour after the warm-up, latency by window and by
quarter away from the faults, and a verdict per goal.

Growth is the Theil–Sen slope (the median of the slopes between every pair of samples): a
replica killed and restarted, or an autoscaling step, moves a few samples but barely the
median, where a least-squares line would tilt.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.rig.report import percentile
from benchmarks.soak.schedule import Fault

RSS_GOAL_MB_H = 10.0
P95_TOLERANCE = 0.10
# fds and threads are "flat" when they grow by less than this per hour (count, or share of
# the kind's median count, whichever is larger)
FLAT_COUNT_H = 2.0
FLAT_SHARE_H = 0.02
# Jobs received this long after a fault ended still feel it (the backlog it left drains first):
# three minutes in the one-hour schedule, scaled with the run like the schedule, never under 30 s.
FAULT_MARGIN_H_S = 180.0
NOT_THE_SERVICE = frozenset({"driver+simulators", "ray actor/worker", "ray core", "gone"})
# A kind present in fewer than this share of the samples after the warm-up comes and goes (Ray
# starts idle workers ahead of need and reaps them): its memory has no trend to judge.
PRESENT_SHARE = 0.5


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The median pairwise slope; None with fewer than three points."""
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    return statistics.median(slopes) if len(xs) >= 3 and slopes else None


def per_hour(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Growth per hour of ``ys`` over ``xs`` (seconds)."""
    slope = theil_sen(xs, ys)
    return None if slope is None else slope * 3600.0


def judged_on(kind: str, present: float = 1.0) -> str | None:
    """Which memory figure a kind's RSS goal is judged on, or None when the kind is not part of
    the service (this driver with the simulators and the load, a worker that lived for one
    sample) or was present in under ``PRESENT_SHARE`` of the samples. PostgreSQL's backends
    each map the shared buffers they touched, so their RSS sum counts that memory once per
    backend; their PSS sum counts it once."""
    if kind in NOT_THE_SERVICE or kind.startswith("other:") or present < PRESENT_SHARE:
        return None
    return "pss_mb" if kind == "postgres" else "rss_mb"


def kind_growth(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, dict[str, Any]]:
    """Per process kind, after the warm-up: level and growth per hour of RSS, PSS, and of fds
    and threads per process (a kind's process count moves with autoscaling and connection
    pools), the growth of its longest-lived process, and a verdict on each goal."""
    after = [s for s in samples if s["t"] >= warmup_s]
    kinds = sorted({k for s in after for k in s["processes"]})
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        points = [(s["t"], s["processes"][kind]) for s in after if kind in s["processes"]]
        xs = [t for t, _ in points]
        counts = [p["n"] for _, p in points]
        entry: dict[str, Any] = {
            "n": statistics.median(counts),
            "n_range": [min(counts), max(counts)],
            "samples": len(points),
            "judged_on": judged_on(kind, len(points) / len(after)),
        }
        for metric in ("rss_mb", "pss_mb", "fds", "threads"):
            per_process = metric in ("fds", "threads")
            ys = [float(p[metric]) / (p["n"] if per_process else 1) for _, p in points]
            entry[metric] = {
                "first": ys[0],
                "last": ys[-1],
                "median": statistics.median(ys),
                "growth_h": per_hour(xs, ys),
            }
        entry["longest"] = _longest_process(points)
        memory = entry["judged_on"]
        entry["rss_ok"] = _at_most(entry[memory]["growth_h"], RSS_GOAL_MB_H) if memory else None
        entry["fds_ok"] = _flat(entry["fds"]) if memory else None
        entry["threads_ok"] = _flat(entry["threads"]) if memory else None
        out[kind] = entry
    return out


def _longest_process(points: list[tuple[float, dict[str, Any]]]) -> dict[str, Any] | None:
    """The process of the kind seen in most samples: its RSS first, last and growth per hour."""
    lives: dict[str, list[tuple[float, float]]] = {}
    for t, p in points:
        for pid, rss in p["pids"].items():
            lives.setdefault(pid, []).append((t, rss))
    if not lives:
        return None
    pid, life = max(lives.items(), key=lambda item: len(item[1]))
    return {
        "pid": pid,
        "minutes": (life[-1][0] - life[0][0]) / 60,
        "first": life[0][1],
        "last": life[-1][1],
        "growth_h": per_hour([t for t, _ in life], [r for _, r in life]),
    }


def _at_most(growth: float | None, limit: float) -> bool | None:
    return None if growth is None else growth <= limit


def _flat(series: dict[str, Any]) -> bool | None:
    """Not growing: a count that falls (a pool closing idle connections, a process letting
    go of files) releases what it held and is no leak."""
    growth = series["growth_h"]
    if growth is None:
        return None
    return growth <= max(FLAT_COUNT_H, FLAT_SHARE_H * series["median"])


def fault_margin_s(duration_s: float) -> float:
    return max(30.0, FAULT_MARGIN_H_S * duration_s / 3600.0)


def touched_by_fault(
    received: float, finished: float, faults: Iterable[Fault], margin_s: float
) -> bool:
    """Whether a job's life (run-relative seconds) overlaps a fault or its aftermath."""
    return any(received <= f.end_s + margin_s and finished >= f.start_s for f in faults)


def job_latencies(
    finished: list[dict[str, Any]], faults: list[Fault], start: float, margin_s: float
) -> list[dict[str, Any]]:
    """Each completed job's run-relative receipt and finish, end-to-end seconds, and whether a
    fault touched it."""
    out = []
    for job in finished:
        if job["status"] != "completed":
            continue
        received, done = job["received"] - start, job["finished"] - start
        out.append(
            {
                "received": received,
                "finished": done,
                "e2e": job["finished"] - job["received"],
                "outcome": job["outcome"],
                "touched": touched_by_fault(received, done, faults, margin_s),
            }
        )
    return out


def quarters(
    jobs: list[dict[str, Any]], duration_s: float, warmup_s: float = 0.0
) -> list[dict[str, Any]]:
    """p50/p95 end-to-end per quarter of the run after the warm-up, over the jobs no fault
    touched (by receipt), each compared with the first quarter. The warm-up is left out as it
    is for growth: a cold start's first slow jobs would set the baseline the rest is judged by."""
    out = []
    span = (duration_s - warmup_s) / 4
    for q in range(4):
        lo, hi = warmup_s + q * span, warmup_s + (q + 1) * span
        values = [j["e2e"] for j in jobs if lo <= j["received"] < hi and not j["touched"]]
        out.append(
            {
                "quarter": q + 1,
                "jobs": len(values),
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
            }
        )
    base = out[0]["p95"]
    for entry in out:
        entry["vs_first"] = entry["p95"] / base - 1 if base and entry["p95"] is not None else None
        entry["ok"] = None if entry["vs_first"] is None else abs(entry["vs_first"]) <= P95_TOLERANCE
    return out


def windows(
    samples: list[dict[str, Any]],
    webhooks: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
    faults: list[Fault],
) -> list[dict[str, Any]]:
    """The timeline, one row per sampling interval: load, latency and errors in it."""
    rows = []
    previous = 0.0
    for sample in samples:
        t = sample["t"]
        sent = [w for w in webhooks if previous <= w["sent"] < t]
        acked = [w["ack_ms"] for w in webhooks if w["ack_ms"] and previous <= w["accepted"] < t]
        done = [j for j in jobs if previous <= j["finished"] < t]
        refused = sum(1 for w in sent for s in w["statuses"] if s not in (200, 202))
        rows.append(
            {
                "t": t,
                "sent": len(sent),
                "refused_deliveries": refused,
                "ack_p95_ms": percentile(acked, 95),
                "completed": len(done),
                "context_only": sum(1 for j in done if j["outcome"] != "llm"),
                "e2e_p50": percentile([j["e2e"] for j in done], 50),
                "e2e_p95": percentile([j["e2e"] for j in done], 95),
                "faults": [f.kind for f in faults if f.start_s < t and f.end_s + 1 >= previous],
            }
        )
        previous = t
    return rows


def table_growth(
    samples: list[dict[str, Any]], from_s: float, tables: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Rows and bytes (heap + indexes) of each table from ``from_s`` on, and their growth per
    hour."""
    after = [s for s in samples if s["t"] >= from_s and s.get("database")]
    out = {}
    for table in tables:
        points = [(s["t"], s["database"]["tables"].get(table)) for s in after]
        points = [(t, p) for t, p in points if p is not None]
        if not points:
            continue
        xs = [t for t, _ in points]
        rows = [float(p["rows"]) for _, p in points]
        size = [p["heap_mb"] + p["index_mb"] for _, p in points]
        out[table] = {
            "rows_first": rows[0],
            "rows_last": rows[-1],
            "rows_growth_h": per_hour(xs, rows),
            "mb_first": size[0],
            "mb_last": size[-1],
            "mb_growth_h": per_hour(xs, size),
        }
    return out


def deliveries(
    webhooks: list[dict[str, Any]], finished: dict[str, Any], notes: dict[str, int]
) -> dict[str, Any]:
    """What became of every webhook: accepted or refused, completed with exactly one note."""
    accepted = [w for w in webhooks if w["enhancement_id"]]
    lost = [
        w["enhancement_id"]
        for w in accepted
        if finished.get(w["enhancement_id"], {}).get("status") != "completed"
        or not notes.get(w["enhancement_id"])
    ]
    return {
        "sent": len(webhooks),
        "accepted": len(accepted),
        "accepted_after_retry": sum(1 for w in accepted if len(w["statuses"]) > 1),
        "refused": len(webhooks) - len(accepted),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "failed": sum(1 for f in finished.values() if f["status"] == "failed"),
        "duplicate_notes": sum(max(0, n - 1) for n in notes.values()),
        "retried_jobs": sum(1 for f in finished.values() if f["attempts"] > 1),
    }
