"""Each benchmark script runs end to end at a tiny size and prints its table.

Behaviour only (the script starts what it needs, drives load, checks what it checks and prints
a table); timings are the benchmarks' business, not the tests'. Each runs as a subprocess, as a
user would run it, with its own embedded PostgreSQL and Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import lanes

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, *lanes.ray_side]


def run(module: str, *args: str, tmp_path: Path, timeout: float = 280) -> tuple[str, object]:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "machine:" in proc.stdout
    return proc.stdout, json.loads(out.read_text())


def test_fairness_measures_b_alone_and_under_flood(tmp_path: Path) -> None:
    stdout, data = run(
        "fairness",
        "--flood",
        "12",
        "--b-seconds",
        "3",
        "--b-rate",
        "2",
        "--caps",
        "fair",
        "--capacity-flood",
        "20",
        "--llm-latency",
        "0.05",
        "--jitter",
        "0",
        tmp_path=tmp_path,
    )
    assert "### Fairness" in stdout and "Work-conserving" in stdout
    (result,) = data["results"]
    assert result["cap"] == "fair"
    assert result["alone"]["completed"] == result["alone"]["n"] > 0
    assert result["under"]["completed"] == result["under"]["n"] > 0
    assert result["ratio"] is not None
    # the diagnostics: each of B's jobs under the flood, and the pools sampled meanwhile
    assert len(result["b_jobs"]) == result["under"]["completed"]
    assert all(job["e2e_s"] > 0 for job in result["b_jobs"])
    assert result["pools"] and all(p["running"].get("Enhancer", 0) >= 1 for p in result["pools"])
    capacity = result["work_conserving"]
    assert capacity["alone_rate"] > 0 and capacity["shared_rate"] > 0 and capacity["share"] > 0


def test_llm_share_measures_b_before_and_after_the_shared_budget(tmp_path: Path) -> None:
    stdout, data = run(
        "llm_share",
        "--flood",
        "16",
        "--b-seconds",
        "3",
        "--b-rate",
        "2",
        "--key-rpm",
        "600",
        "--key-concurrency",
        "2",
        "--llm-latency",
        "0.2",
        "--jitter",
        "0",
        tmp_path=tmp_path,
    )
    assert "### One LLM key shared" in stdout
    assert [r["mode"] for r in data["results"]] == ["before", "after"]
    for result in data["results"]:
        for phase in ("alone", "under"):
            assert result[phase]["sent"] == result[phase]["accepted"] == 6
            assert result[phase]["completed"] == 6
        assert result["ratio"] is not None and result["key_capacity_per_s"] == 10.0
    after = data["results"][1]
    assert after["key_under_flood"]["rate_limited"] == 0  # the budget kept to the key


def test_recovery_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    stdout, data = run(
        "recovery",
        "--tickets",
        "24",
        "--tenants",
        "2",
        "--llm-latency",
        "0.5",
        "--jitter",
        "0",
        "--kill-at",
        "0.2",
        "--restart-at",
        "0.5",
        "--redeploy-at",
        "0",
        tmp_path=tmp_path,
    )
    assert "### Recovery" in stdout and "### Disruptions" in stdout
    assert data["accepted"] == 24
    assert data["lost"] == 0 and data["duplicate_notes"] == 0 and data["missing_notes"] == 0
    assert [e["action"].split()[0] for e in data["events"]] == ["SIGKILL", "SIGKILL"]


def test_footprint_reports_memory(tmp_path: Path) -> None:
    stdout, data = run(
        "footprint",
        "--load-seconds",
        "1",
        "--rate",
        "4",
        "--tenants",
        "2",
        "--settle",
        "0",
        "--llm-latency",
        "0.05",
        "--demo-runs",
        "0",
        tmp_path=tmp_path,
    )
    assert "### Resident memory" in stdout
    assert data["memory"]["idle"]["rss_bytes"] > 0
    assert data["memory"]["load"]["completed"] == 4


def test_pipeline_reports_the_product_as_a_ratio_to_its_floor(tmp_path: Path) -> None:
    stdout, runs = run(
        "pipeline",
        "--configs",
        "floor,default",
        "--rate",
        "4",
        "--latency-seconds",
        "1",
        "--backlog",
        "12",
        "--tenants",
        "2",
        "--idle-seconds",
        "1",
        "--llm-latency",
        "0.05",
        "--jitter",
        "0",
        tmp_path=tmp_path,
    )
    assert "### Against the floor" in stdout
    assert "### Pipeline" in stdout and "CPU ms per enhancement" in stdout
    by_variant = {r["variant"]: {p["phase"]: p for p in r["phases"]} for r in runs}
    floor, product = by_variant["floor"], by_variant["default"]
    assert product["latency"]["completed"] == 4  # --rate 4 for --latency-seconds 1
    assert product["capacity"]["completed"] == 12
    assert product["capacity"]["cpu_ms_per_job"] > 0
    # The floor does the real work: every job reaches a note through the LLM simulator.
    assert floor["capacity"]["completed"] == 12
    assert floor["capacity"]["outcomes"] == {"completed/llm": 12}
    assert floor["capacity"]["replicas"] == {"floor process": 1}
    ratio = product["capacity"]["ratio_to_floor"]
    assert ratio["overall_rate"] == round(
        product["capacity"]["overall_rate"] / floor["capacity"]["overall_rate"], 3
    )
    assert ratio["cpu_ms_per_job"] > 0


def test_intake_reports_bare_uvicorn_the_floor_and_the_product(tmp_path: Path) -> None:
    # one run, one Ray: the product through Serve (token webhooks) beside bare uvicorn serving
    # the same app and the intake floor
    stdout, data = run(
        "intake",
        "--configs",
        "floor,bare,serve-token",
        "--seconds",
        "1",
        "--reps",
        "1",
        "--passes",
        "1",
        "--warmup",
        "0.5",
        "--clients",
        "4",
        "--tenants",
        "2",
        "--rate",
        "0",
        tmp_path=tmp_path,
    )
    assert "### Intake" in stdout and "| bare " in stdout and "| serve-token " in stdout
    assert "ratio to floor" in stdout
    results = {r["name"]: r for r in data["results"]}
    assert set(results) == {"floor", "bare", "serve-token"}
    for result in results.values():
        assert result["accepted"] > 0 and result["errors"] == 0
        assert result["durable"], result  # every 202 is a committed job row
    assert results["floor"]["kind"] == "floor" and results["bare"]["kind"] == "bare"


def test_soak_meets_every_fault_loses_nothing_and_purges(tmp_path: Path) -> None:
    # three minutes of load: the one-hour schedule scaled down, every fault met once (five
    # replica kills, one of each deployment), a retention short enough to purge within it
    stdout, data = run(
        "soak",
        "--duration",
        "180",
        "--retention-minutes",
        "1.5",
        "--retention-every",
        "15",
        tmp_path=tmp_path,
        timeout=420,
    )
    assert "### Timeline" in stdout and "### Verdict" in stdout
    deliveries = data["deliveries"]
    assert deliveries["sent"] == 900 and deliveries["accepted"] == 900
    assert deliveries["lost"] == 0 and deliveries["duplicate_notes"] == 0
    started = {(e["fault"]["kind"], e["fault"]["target"]) for e in data["events"]}
    assert {kind for kind, _ in started} == {"kill", "llm_429", "llm_402", "sdp_5xx", "pg_restart"}
    assert {target for kind, target in started if kind == "kill"} == {
        "Enhancer",
        "Ingress",
        "Synthesizer",
        "ContextGatherer",
        "Dispatcher",
    }
    assert not [e for e in data["events"] if "error" in e], data["events"]
    assert all(e.get("killed") for e in data["events"] if e["fault"]["kind"] == "kill")
    last = next(s["database"] for s in reversed(data["samples"]) if s.get("database"))
    assert last["retention"]["enhancements"]["purged"] > 0  # jobs older than 1.5 min went
    kinds = data["kinds"]
    assert {"Ingress", "Dispatcher", "Enhancer", "postgres", "raylet", "ray gcs"} <= set(kinds)
    few = {name: k["samples"] for name, k in kinds.items() if k["judged_on"] and k["samples"] < 10}
    assert not few, few
