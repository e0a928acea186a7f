"""The soak benchmark's judgement, without running it: the fault schedule scales with the run,
growth is measured robustly, each kind is judged on the right figure, latency is compared
away from the faults, and a webhook counts as lost unless it ends with exactly one note."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.soak import analysis
from benchmarks.soak.report import verdicts
from benchmarks.soak.schedule import KILL_ORDER, MIN_WINDOW_S, Fault, fault_schedule

KINDS = {"kill", "llm_429", "llm_402", "sdp_5xx", "pg_restart"}


def test_the_hour_follows_the_issue() -> None:
    faults = fault_schedule(3600)
    kills = [f for f in faults if f.kind == "kill"]
    assert [f.start_s for f in kills] == [600, 1200, 1800, 2400, 3000]  # one every 10 minutes
    assert [f.target for f in kills] == list(KILL_ORDER)
    (credits,) = [f for f in faults if f.kind == "llm_402"]
    assert credits.end_s - credits.start_s == 600  # ten minutes of 402
    (sdp,) = [f for f in faults if f.kind == "sdp_5xx"]
    assert sdp.end_s - sdp.start_s == 60  # a minute of 5xx
    assert sum(f.kind == "pg_restart" for f in faults) == 1
    assert sum(f.kind == "llm_429" for f in faults) == 2


@pytest.mark.parametrize("duration", [180.0, 1200.0, 7200.0])
def test_any_duration_meets_every_fault_inside_the_run(duration: float) -> None:
    faults = fault_schedule(duration)
    assert {f.kind for f in faults} == KINDS
    assert all(0 < f.start_s <= f.end_s < duration for f in faults)
    assert all(
        f.end_s - f.start_s >= MIN_WINDOW_S for f in faults if f.kind in ("llm_402", "sdp_5xx")
    )
    assert [f.start_s for f in faults] == sorted(f.start_s for f in faults)


def test_theil_sen_ignores_a_restart_dip_that_would_tilt_a_line() -> None:
    xs = [float(x) for x in range(20)]
    ys = [100.0] * 20
    ys[10], ys[11] = 60.0, 80.0  # a replica killed and warming up again
    assert analysis.theil_sen(xs, ys) == 0.0
    assert analysis.theil_sen([0.0, 1.0], [0.0, 1.0]) is None  # too few points


def _sample(t: float, **kinds: dict[str, Any]) -> dict[str, Any]:
    return {"t": t, "processes": kinds}


def _kind(rss: float, *, n: int = 1, pss: float | None = None, fds: int = 50) -> dict[str, Any]:
    return {
        "n": n,
        "rss_mb": rss,
        "pss_mb": rss if pss is None else pss,
        "fds": fds * n,
        "threads": 30 * n,
        "pids": {str(1000 + i): rss / n for i in range(n)},
    }


def test_each_kind_is_judged_on_its_own_figure() -> None:
    samples = [
        _sample(
            minutes * 60,
            Enhancer=_kind(200 + minutes * 0.5),  # 30 MB/h: a leak
            Ingress=_kind(180 + minutes * 0.1),  # 6 MB/h: within the goal
            postgres=_kind(300 + minutes * 5, n=20, pss=80),  # RSS of shared buffers; PSS flat
            Synthesizer=_kind(200, fds=50 + minutes),  # one fd a minute
            Dispatcher=_kind(180, fds=80 - minutes // 5),  # a pool closing idle connections
            **{"driver+simulators": _kind(200 + minutes * 5)},
            **({"ray idle workers": _kind(60)} if minutes == 30 else {}),
        )
        for minutes in range(0, 61, 5)
    ]
    kinds = analysis.kind_growth(samples, warmup_s=600)
    assert kinds["Enhancer"]["rss_ok"] is False
    assert kinds["Enhancer"]["rss_mb"]["growth_h"] == pytest.approx(30.0)
    assert kinds["Ingress"]["rss_ok"] is True
    assert kinds["postgres"]["judged_on"] == "pss_mb" and kinds["postgres"]["rss_ok"] is True
    assert kinds["Synthesizer"]["fds_ok"] is False and kinds["Synthesizer"]["threads_ok"] is True
    assert kinds["Dispatcher"]["fds"]["growth_h"] < -2 and kinds["Dispatcher"]["fds_ok"] is True
    assert kinds["driver+simulators"]["judged_on"] is None  # not the service
    assert kinds["driver+simulators"]["rss_ok"] is None
    assert kinds["ray idle workers"]["samples"] == 1
    assert kinds["ray idle workers"]["judged_on"] is None  # came and went: no trend to judge
    assert kinds["Enhancer"]["longest"]["growth_h"] == pytest.approx(30.0)


def test_latency_quarters_leave_out_what_a_fault_touched() -> None:
    faults = [Fault("sdp_5xx", 1000.0, 1060.0)]
    finished = [
        {"status": "completed", "outcome": "llm", "received": r, "finished": r + e2e}
        for r, e2e in [(100.0 + i, 1.0) for i in range(100)]
        + [(1010.0 + i, 60.0) for i in range(50)]  # caught by the outage
        + [(2000.0 + i, 1.05) for i in range(100)]
        + [(3000.0 + i, 2.0) for i in range(100)]
    ]
    jobs = analysis.job_latencies(finished, faults, start=0.0, margin_s=180.0)
    assert sum(j["touched"] for j in jobs) == 50
    quarters = analysis.quarters(jobs, duration_s=3600)
    assert [q["jobs"] for q in quarters] == [100, 0, 100, 100]
    assert quarters[2]["ok"] is True and quarters[3]["ok"] is False  # +100 % by the end


def test_a_webhook_is_lost_unless_it_ends_with_one_note() -> None:
    webhooks = [
        {"enhancement_id": "a", "statuses": [202]},
        {"enhancement_id": "b", "statuses": [503, 202]},
        {"enhancement_id": "c", "statuses": [202]},
        {"enhancement_id": "d", "statuses": [202]},
        {"enhancement_id": None, "statuses": [503, 503]},
    ]
    finished = {
        "a": {"status": "completed", "attempts": 1},
        "b": {"status": "completed", "attempts": 2},
        "c": {"status": "failed", "attempts": 5},
        "d": {"status": "completed", "attempts": 1},
    }
    notes = {"a": 1, "b": 2, "c": 0, "d": 0}
    result = analysis.deliveries(webhooks, finished, notes)
    assert result["accepted"] == 4 and result["accepted_after_retry"] == 1
    assert result["refused"] == 1 and result["lost"] == 2  # c failed, d has no note
    assert result["duplicate_notes"] == 1 and result["retried_jobs"] == 2


def test_the_verdict_fails_any_goal_that_failed() -> None:
    samples = [_sample(m * 60, Enhancer=_kind(200 + m * 0.5)) for m in range(0, 61, 5)]
    data = {
        "kinds": analysis.kind_growth(samples, warmup_s=600),
        "quarters": [{"quarter": q, "ok": True, "vs_first": 0.01} for q in (1, 2, 3, 4)],
        "deliveries": {"lost": 0, "refused": 0, "sent": 10, "duplicate_notes": 0},
    }
    assert [ok for _, _, ok in verdicts(data)] == [False, True, True, True, True]


def test_latency_quarters_start_after_the_warm_up() -> None:
    # a cold start: the first two minutes' jobs are slow, then steady at 1 s
    finished = [
        {"status": "completed", "outcome": "llm", "received": r, "finished": r + e2e}
        for r, e2e in [(float(s), 8.0 if s < 120 else 1.0) for s in range(0, 1200, 2)]
    ]
    jobs = analysis.job_latencies(finished, [], start=0.0, margin_s=60.0)
    cold = analysis.quarters(jobs, duration_s=1200)
    assert cold[0]["p95"] == pytest.approx(8.0) and cold[1]["ok"] is False  # -87 % "degrades"
    warm = analysis.quarters(jobs, duration_s=1200, warmup_s=200)
    assert [q["jobs"] for q in warm] == [125, 125, 125, 125]
    assert warm[0]["p95"] == pytest.approx(1.0) and all(q["ok"] for q in warm)
