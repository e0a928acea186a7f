"""Benchmark 3 — fairness: one tenant's flood must not delay another tenant's tickets much.

    python -m benchmarks.fairness --flood 1000 --b-seconds 20 --caps fair,8

Tenant B sends 1 ticket/s for ``--b-seconds`` alone; then tenant A floods ``--flood`` tickets
(as fast as 32 connections allow) while B keeps sending 1 ticket/s for the same time. Target:
B's p95 end-to-end under the flood <= 1.5 x its p95 alone. Both measured in the same run, for
each dispatch setting in ``--caps``: ``fair`` is the product's default (work-conserving
weighted fair share, no per-tenant cap), ``nogate`` the same with the Enhancer's tenant-fair
stage gate off (``AI_AGENTS_ENHANCER_STAGE_PLACES=0``), ``fixed`` the same with the
Dispatcher's adaptive admission off (``AI_AGENTS_DISPATCH_ADAPTIVE=false``: the in-flight cap
is running Enhancers x their target), ``fairdb`` / ``fifodb`` the same with
every pool's connections handed out tenant-fair / first come, first served
(``AI_AGENTS_DB_TENANT_FAIR`` true / false, ``db.pool``), ``fair@N`` fair share with the
Dispatcher's in-flight cap at most N (``AI_AGENTS_DISPATCH_MAX_INFLIGHT``), a number is a hard
per-tenant in-flight cap (``AI_AGENTS_PER_TENANT_INFLIGHT``); the Dispatcher is redeployed with
it in its ``runtime_env``. Between runs the rest of A's backlog is discarded (marked failed in
the database by this script) and the pipeline drains, so every run starts from an idle system.

Work-conserving check (``--capacity-flood`` tickets, 0 to skip): A floods alone, then the same
number split between A and B; A alone must get >= 90 % of the completions per second the two
tenants get together (10-90 % of completions), i.e. a tenant alone may use the whole system.
LLM simulator 2 s +- 20 %, SDP simulator 50 ms, generous per-tenant rate limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any

from benchmarks.rig.report import (
    add_pipeline_options,
    e2e_seconds,
    fmt,
    machine_info,
    percentile,
    print_table,
    run_script,
    stage_breakdown,
    steady_rate,
    untimed_seconds,
)
from benchmarks.rig.stack import Sent, TicketSender, pipeline_rig
from local_stack.database import Database
from local_stack.ray_serve import RayServe
from local_stack.results import fetch_jobs, wait_terminal
from local_stack.tenants import Tenant

NO_GATE = "nogate"  # fair share with the Enhancer's tenant-fair stage gate off
FIFO_DB = "fifodb"  # fair share with the pools' connections first come, first served
FAIR_DB = "fairdb"  # fair share with tenant-fair connections (AI_AGENTS_DB_TENANT_FAIR=true)
LIMITED = "fair@"  # fair@N: fair share with AI_AGENTS_DISPATCH_MAX_INFLIGHT=N
FIXED = "fixed"  # fair share with adaptive admission off (AI_AGENTS_DISPATCH_ADAPTIVE=false)


def deploy_with_cap(
    ray_serve: RayServe, cap: int | str | None, pools: str, stage_places: int | None = None
) -> float:
    from actors.deployment_options import (
        CONTEXT_GATHERER,
        DISPATCHER,
        ENHANCER,
        SYNTHESIZER,
        pool_options,
    )
    from benchmarks.pipeline.bench import PREVIOUS_POOLS
    from benchmarks.rig.apps import build_pipeline_app

    overrides: dict[str, dict[str, Any]] = dict(PREVIOUS_POOLS if pools == "previous" else {})

    def with_env(name: str, env: dict[str, str]) -> None:
        """The deployment's options (with any earlier override), these variables added."""
        options = {**pool_options(name), **overrides.get(name, {})}
        actor = dict(options["ray_actor_options"])
        old = dict((actor.get("runtime_env") or {}).get("env_vars") or {})
        actor["runtime_env"] = {"env_vars": {**old, **env}}
        overrides[name] = {**overrides.get(name, {}), "ray_actor_options": actor}

    env = {"AI_AGENTS_PER_TENANT_INFLIGHT": str(cap)} if isinstance(cap, int) else {}
    if isinstance(cap, str) and cap.startswith(LIMITED):  # fair share, a lower in-flight cap
        env = {"AI_AGENTS_DISPATCH_MAX_INFLIGHT": cap.removeprefix(LIMITED)}
    env = {"AI_AGENTS_DISPATCH_ADAPTIVE": "false"} if cap == FIXED else env  # no admission
    with_env(DISPATCHER, env)
    places = 0 if cap == NO_GATE else stage_places
    if places is not None:
        with_env(ENHANCER, {"AI_AGENTS_ENHANCER_STAGE_PLACES": str(places)})
    if cap in (FIFO_DB, FAIR_DB):
        for name in (ENHANCER, CONTEXT_GATHERER, SYNTHESIZER):
            with_env(name, {"AI_AGENTS_DB_TENANT_FAIR": "true" if cap == FAIR_DB else "false"})
    return ray_serve.deploy(build_pipeline_app(overrides))


async def sample_pools(since: float, stop: asyncio.Event) -> list[dict[str, Any]]:
    """Running replicas per pool every 2 s until ``stop`` (does the flood scale the pools out
    while B is measured?)."""
    from benchmarks.rig.cluster import deployment_nodes

    samples: list[dict[str, Any]] = []
    while not stop.is_set():
        try:
            running: dict[str, Any] = {
                k: len(v) for k, v in (await asyncio.to_thread(deployment_nodes)).items()
            }
        except Exception as exc:  # noqa: BLE001 - a sample, not a result
            running = {"error": type(exc).__name__}
        samples.append({"t": round(time.time() - since, 1), "running": running})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await stop.wait()
    return samples


def per_job(rows: list[dict[str, Any]], sent: list[Sent], since: float) -> list[dict[str, Any]]:
    """Each of B's jobs: when it was sent (s after the flood began), end to end, and the part
    no stage timed (claim -> finish minus the timed stages), to see which ones were slow."""
    sent_at = {s.enhancement_id: s.sent_at for s in sent if s.enhancement_id}
    out = []
    for r in rows:
        if r["id"] not in sent_at or r["finished"] is None or r["started"] is None:
            continue
        out.append(
            {
                "sent_s": round(sent_at[r["id"]] - since, 2),
                "e2e_s": round(float(r["finished"]) - sent_at[r["id"]], 2),
                "untimed_s": round(untimed_seconds(r), 2),
                "queued_s": round(float(r["started"]) - float(r["received"]), 2),
            }
        )
    return sorted(out, key=lambda j: j["sent_s"])


async def b_stream(sender: TicketSender, tenant: Tenant, rate: float, seconds: float) -> list[Sent]:
    return await sender.open_loop(rate, max(1, int(rate * seconds)), lambda _: tenant)


async def discard_backlog(db: Database, tenant_id: str, timeout_s: float = 180) -> int:
    """Fail A's still-queued jobs (benchmark clean-up) and wait for running ones to finish."""
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        dropped = await conn.fetchval(
            "WITH d AS (UPDATE enhancements SET status = 'failed', error = 'benchmark: discarded',"
            " finished_at = now() WHERE tenant_id = $1 AND status = 'queued' RETURNING 1)"
            " SELECT count(*) FROM d",
            tenant_id,
        )
        deadline = time.monotonic() + timeout_s
        busy_sql = "SELECT count(*) FROM enhancements WHERE status IN ('queued', 'running')"
        while await conn.fetchval(busy_sql) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        return int(dropped)
    finally:
        await conn.close()


def summary(rows: list[dict[str, Any]], sent: list[Sent]) -> dict[str, Any]:
    """End to end from the moment the webhook was sent (so intake queueing under the flood
    counts) to the job's completion (its note is written before that)."""
    sent_at = {s.enhancement_id: s.sent_at for s in sent if s.enhancement_id}
    e2e = [
        float(r["finished"]) - sent_at[r["id"]]
        for r in rows
        if r["status"] == "completed" and r["finished"] is not None
    ]
    stages = stage_breakdown(rows)
    intake, handoff = [], []
    for r in rows:
        if r["status"] != "completed" or r["finished"] is None or r["started"] is None:
            continue
        intake.append(float(r["received"]) - sent_at[r["id"]])
        handoff.append(untimed_seconds(r))
    stages["intake"] = {"p50": percentile(intake, 50), "p95": percentile(intake, 95)}
    stages["handoff"] = {"p50": percentile(handoff, 50), "p95": percentile(handoff, 95)}
    return {
        "n": len(rows),
        "retried": sum(1 for r in rows if (r.get("attempts") or 1) > 1),
        "errors": sorted({str(r["error"])[:80] for r in rows if r.get("error")}),
        "completed": len(e2e),
        "p50": percentile(e2e, 50),
        "p95": percentile(e2e, 95),
        "max": max(e2e) if e2e else None,
        "stages": stages,
    }


async def capacity(
    args: argparse.Namespace, db: Database, sender: TicketSender, a: Tenant, b: Tenant
) -> dict[str, Any]:
    """A alone against A and B together, the same number of tickets: completions per second."""
    rates: dict[str, float | None] = {}
    for label, pick in (("alone", lambda _: a), ("shared", lambda i: (a, b)[i % 2])):
        sent = await sender.burst(args.capacity_flood, pick, concurrency=32)
        rows = await wait_terminal(
            db, [s.enhancement_id for s in sent if s.enhancement_id], args.timeout
        )
        rates[label] = steady_rate([r for r in rows if r["status"] == "completed"])
    alone, shared = rates["alone"], rates["shared"]
    return {
        "alone_rate": alone,
        "shared_rate": shared,
        "share": alone / shared if alone and shared else None,
    }


async def measure_cap(
    cap: int | str | None,
    args: argparse.Namespace,
    ray_serve: RayServe,
    db: Database,
    sender: TicketSender,
    a: Tenant,
    b: Tenant,
) -> dict[str, Any]:
    say = lambda m: print(f"[fairness] cap {cap}: {m}", file=sys.stderr, flush=True)  # noqa: E731
    redeploy_s = deploy_with_cap(ray_serve, cap, args.pools, args.stage_places)
    warm = await sender.burst(4, lambda i: (a, b)[i % 2])
    await wait_terminal(db, [s.enhancement_id for s in warm if s.enhancement_id], 120)
    say("B alone")
    alone_sent = await b_stream(sender, b, args.b_rate, args.b_seconds)
    alone = await wait_terminal(
        db, [s.enhancement_id for s in alone_sent if s.enhancement_id], args.timeout
    )
    say(f"alone p95 {summary(alone, alone_sent)['p95']}; A floods {args.flood}")
    flood_started = time.time()
    flood_task = asyncio.create_task(sender.burst(args.flood, lambda _: a, concurrency=32))
    sampled = asyncio.Event()
    pools_task = asyncio.create_task(sample_pools(flood_started, sampled))
    under_sent = await b_stream(sender, b, args.b_rate, args.b_seconds)
    under = await wait_terminal(
        db, [s.enhancement_id for s in under_sent if s.enhancement_id], args.timeout
    )
    sampled.set()
    b_done_at = max((float(r["finished"]) for r in under if r["finished"]), default=time.time())
    flood_sent = await flood_task
    flood_ids = [s.enhancement_id for s in flood_sent if s.enhancement_id]
    flood_rows = await fetch_jobs(db, flood_ids)
    a_done_in_window = sum(
        1
        for r in flood_rows
        if r["finished"] and float(r["finished"]) <= b_done_at and r["status"] == "completed"
    )
    a_left = sum(1 for r in flood_rows if r["status"] in ("queued", "running"))
    a_e2e = e2e_seconds(
        [r for r in flood_rows if r["finished"] and float(r["finished"]) <= b_done_at]
    )
    pools_seen = await pools_task
    dropped = await discard_backlog(db, a.id)
    work_conserving = await capacity(args, db, sender, a, b) if args.capacity_flood else {}
    result: dict[str, Any] = {
        "work_conserving": work_conserving,
        "cap": "fair" if cap is None else cap,
        "redeploy_s": redeploy_s,
        "alone": summary(alone, alone_sent),
        "under": summary(under, under_sent),
        "flood_accepted": len(flood_ids),
        "flood_send_s": None,
        "a_completed_during_b": a_done_in_window,
        "a_rate_during_b": a_done_in_window / max(1e-9, b_done_at - flood_started),
        "a_p50_during_b": percentile(a_e2e, 50),
        "a_backlog_left": a_left,
        "a_discarded": dropped,
        "b_jobs": per_job(under, under_sent, flood_started),
        "pools": pools_seen,
    }
    alone_p95, under_p95 = result["alone"]["p95"], result["under"]["p95"]
    result["ratio"] = under_p95 / alone_p95 if alone_p95 and under_p95 else None
    say(f"under p95 {under_p95}, ratio {result['ratio']}, A left {a_left}")
    under_summary = result["under"]
    say(f"B under the flood: {under_summary['retried']} retried, errors {under_summary['errors']}")
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    async with pipeline_rig(args, "fair", 2) as rig:
        ray_serve, db, sender, (a, b) = rig.ray_serve, rig.db, rig.sender, rig.tenants
        results = [await measure_cap(cap, args, ray_serve, db, sender, a, b) for cap in args.caps]
        return {"machine": machine, "args": vars(args), "results": results}


def enhancers_seen(pools: list[dict[str, Any]]) -> str:
    """Running Enhancer replicas at the first and last sample: a configuration measured while
    the pools scale out under the flood is not comparable with one that met them scaled out
    (replica start-ups compete for the same cores), so the table says which it was."""
    counts = [p["running"].get("Enhancer") for p in pools if "error" not in p["running"]]
    return f"{counts[0]} -> {counts[-1]}" if counts else "-"


def run_most(results: list[dict[str, Any]]) -> float | None:
    """What the whole system can do, for the work-conserving goal: the most completions/s any
    configuration of this run reached, A alone or A and B together. So a configuration that
    holds A back (a lower in-flight cap, a per-tenant cap) is measured against the others, not
    only against itself with B added."""
    rates = [
        rate
        for r in results
        for rate in (
            r["work_conserving"].get("alone_rate"),
            r["work_conserving"].get("shared_rate"),
        )
        if rate
    ]
    return max(rates, default=None)


def report(data: dict[str, Any]) -> str:
    args = data["args"]
    rows = []
    for r in data["results"]:
        rows.append(
            [
                r["cap"],
                f"{fmt(r['alone']['p50'], 2)} / {fmt(r['alone']['p95'], 2)}",
                f"{fmt(r['under']['p50'], 2)} / {fmt(r['under']['p95'], 2)}",
                fmt(r["ratio"], 2),
                "yes" if r["ratio"] is not None and r["ratio"] <= 1.5 else "no",
                f"{r['under']['completed']}/{r['under']['n']}",
                f"{r['a_completed_during_b']} ({fmt(r['a_rate_during_b'])}/s)",
                fmt(r["a_p50_during_b"], 1),
                r["a_backlog_left"],
                enhancers_seen(r.get("pools", [])),
            ]
        )
    text = print_table(
        f"Fairness: A floods {args['flood']}, B sends {args['b_rate']}/s for {args['b_seconds']} s"
        f" (alone, then under the flood); LLM {args['llm_latency']} s; pools {args['pools']}",
        [
            "dispatch (per-tenant cap)",
            "B p50/p95 s alone",
            "B p50/p95 s under flood",
            "p95 ratio",
            "<= 1.5",
            "B completed",
            "A done while B measured",
            "A p50 s",
            "A backlog left",
            "Enhancers during B (first -> last)",
        ],
        rows,
    )
    checked = [r for r in data["results"] if r.get("work_conserving")]
    best = run_most(checked)

    def of_best(rate: float | None) -> float | None:
        return rate / best if rate and best else None

    text += print_table(
        f"Work-conserving: {args['capacity_flood']} tickets from A alone, then split between A"
        " and B (completions/s, 10-90 %); goal: A alone >= 0.9 x the most this run completed"
        f" in any configuration ({fmt(best)}/s)",
        [
            "dispatch",
            "A alone /s",
            "A and B /s",
            "A alone / both",
            "A alone / run's most",
            ">= 0.9",
        ],
        [
            [
                r["cap"],
                fmt(r["work_conserving"].get("alone_rate")),
                fmt(r["work_conserving"].get("shared_rate")),
                fmt(r["work_conserving"].get("share"), 2),
                fmt(of_best(r["work_conserving"].get("alone_rate")), 2),
                "yes" if (of_best(r["work_conserving"].get("alone_rate")) or 0) >= 0.9 else "no",
            ]
            for r in checked
        ],
    )
    text += print_table(
        "Where B's time goes (p95 seconds per stage: alone -> under the flood)",
        [
            "cap",
            "intake (sent -> committed)",
            "queued (-> claimed)",
            "hand-off (Serve queues, untimed)",
            "context",
            "synthesis (LLM)",
            "write-back",
        ],
        [
            [
                r["cap"],
                *(
                    f"{fmt(r['alone']['stages'][k]['p95'], 2)} -> "
                    f"{fmt(r['under']['stages'][k]['p95'], 2)}"
                    for k in ("intake", "queued", "handoff", "context", "synthesis", "writeback")
                ),
            ]
            for r in data["results"]
        ],
    )
    return text


def _parse_cap(cap: str) -> int | str | None:
    """One ``--caps`` entry: None for the default, a named setting as is, else a per-tenant cap."""
    if cap == "fair":
        return None
    if cap in (NO_GATE, FIFO_DB, FAIR_DB, FIXED) or cap.startswith(LIMITED):
        return cap
    return int(cap)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fairness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--b-rate", type=float, default=1.0)
    parser.add_argument("--b-seconds", type=float, default=20.0)
    parser.add_argument(
        "--caps",
        default="fair,8",
        help="dispatch settings to compare: fair (the default, no per-tenant cap), nogate "
        "(fair with the Enhancer's tenant-fair stage gate off), fairdb / fifodb (fair with "
        "database connections tenant-fair / first come, first served), fair@N (fair with the "
        "Dispatcher's in-flight cap at most N), fixed (fair with adaptive admission off) or a "
        "per-tenant cap",
    )
    parser.add_argument(
        "--capacity-flood",
        type=int,
        default=400,
        help="tickets for the work-conserving check (A alone vs A and B together); 0: skip",
    )
    parser.add_argument(
        "--stage-places",
        type=int,
        default=None,
        help="AI_AGENTS_ENHANCER_STAGE_PLACES for the Enhancer (default: the product's)",
    )
    add_pipeline_options(parser)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    args.caps = [_parse_cap(c) for c in str(args.caps).split(",") if c]
    return args


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)
