"""One LLM provider key shared by a flooding tenant and a quiet one.

    python -m benchmarks.llm_share --flood 1000 --b-seconds 60 --modes before,after

The LLM simulator's key allows ``--key-rpm`` requests a minute and ``--key-concurrency`` calls
at once (429 with ``Retry-After`` beyond either), less than tenant A's demand: A floods
``--flood`` tickets (as fast as 32 connections allow) while tenant B sends ``--b-rate``
tickets a second for ``--b-seconds``. Each mode is measured on the same stack, one after the
other, with the Synthesizer redeployed for it:

- ``before``: ``AI_AGENTS_LLM_SHARED_BUDGET=false``, the per-tenant limiters only (each call
  meets the key alone, retries on ``Retry-After`` within its limits, every failed call counts
  toward its replica's breaker), the service before the shared budget;
- ``after``: the shared provider budget, told the key's limits
  (``AI_AGENTS_LLM_PROVIDER_RPM``/``_CONCURRENCY``).

Per mode: B alone first (its p95 end to end, from the webhook sent to the job finished), then
B under A's flood: B's share of notes written by the LLM (outcome ``llm``), its p95 against
alone, and what A got from the key meanwhile (LLM notes a second against the key's capacity:
"A uses what the limit leaves"). Goals: B ≥ 95 % LLM notes and p95 ≤ 1.5 × alone. Tenants'
per-tenant LLM rate is the rig's generous one, so A's demand is the pipeline's, far above
the key's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from typing import Any

from benchmarks.fairness.bench import b_stream, discard_backlog
from benchmarks.rig.report import (
    add_pipeline_options,
    fmt,
    machine_info,
    percentile,
    print_table,
    run_script,
)
from benchmarks.rig.stack import TEST_LLM_KEY, Sent, TicketSender, pipeline_rig
from local_stack.database import Database
from local_stack.ray_serve import RayServe
from local_stack.results import fetch_jobs, wait_terminal
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant

MODES = ("before", "after")


def deploy_mode(ray_serve: RayServe, mode: str) -> float:
    """The product graph with the Synthesizer's shared budget on (after) or off (before)."""
    from actors.deployment_options import SYNTHESIZER, pool_options
    from benchmarks.rig.apps import build_pipeline_app

    options = pool_options(SYNTHESIZER)
    actor = dict(options["ray_actor_options"])
    shared = "true" if mode == "after" else "false"
    actor["runtime_env"] = {"env_vars": {"AI_AGENTS_LLM_SHARED_BUDGET": shared}}
    return ray_serve.deploy(build_pipeline_app({SYNTHESIZER: {"ray_actor_options": actor}}))


def b_figures(rows: list[dict[str, Any]], sent: list[Sent]) -> dict[str, Any]:
    """B's tickets: how many got an LLM note, end to end (webhook sent → job finished), and
    why the others did not."""
    sent_at = {s.enhancement_id: s.sent_at for s in sent if s.enhancement_id}
    done = [r for r in rows if r["status"] == "completed" and r["finished"] is not None]
    e2e = [float(r["finished"]) - sent_at[r["id"]] for r in done]
    reasons = collections.Counter(
        str(r["error"] or "-")[:70] for r in rows if r["outcome"] != "llm"
    )
    llm = sum(1 for r in rows if r["outcome"] == "llm")
    return {
        "sent": len(sent),
        "accepted": len(sent_at),
        "llm": llm,
        "llm_share": llm / len(sent) if sent else None,
        "completed": len(done),
        "p50": percentile(e2e, 50),
        "p95": percentile(e2e, 95),
        "why_not_llm": reasons.most_common(4),
    }


async def measure_mode(
    mode: str,
    args: argparse.Namespace,
    ray_serve: RayServe,
    db: Database,
    sims: Simulators,
    sender: TicketSender,
    a: Tenant,
    b: Tenant,
) -> dict[str, Any]:
    say = lambda m: print(f"[llm_share] {mode}: {m}", file=sys.stderr, flush=True)  # noqa: E731
    redeploy_s = deploy_mode(ray_serve, mode)
    warm = await sender.burst(4, lambda i: (a, b)[i % 2])
    await wait_terminal(db, [s.enhancement_id for s in warm if s.enhancement_id], 120)
    say("B alone")
    key_before = sims.llm.keys.stats(TEST_LLM_KEY)
    alone_sent = await b_stream(sender, b, args.b_rate, args.b_seconds)
    alone_rows = await wait_terminal(
        db, [s.enhancement_id for s in alone_sent if s.enhancement_id], args.timeout
    )
    alone = b_figures(alone_rows, alone_sent)
    say(f"alone: {alone['llm']}/{alone['sent']} LLM notes, p95 {fmt(alone['p95'], 2)} s")
    key_alone = sims.llm.keys.stats(TEST_LLM_KEY)
    flood_started = time.time()
    flood_task = asyncio.create_task(sender.burst(args.flood, lambda _: a, concurrency=32))
    under_sent = await b_stream(sender, b, args.b_rate, args.b_seconds)
    under_rows = await wait_terminal(
        db, [s.enhancement_id for s in under_sent if s.enhancement_id], args.timeout
    )
    b_done_at = max((float(r["finished"]) for r in under_rows if r["finished"]), default=0.0)
    b_done_at = b_done_at or time.time()
    key_under = sims.llm.keys.stats(TEST_LLM_KEY)
    under = b_figures(under_rows, under_sent)
    flood_sent = await flood_task
    flood_rows = await fetch_jobs(db, [s.enhancement_id for s in flood_sent if s.enhancement_id])
    window = max(1e-9, b_done_at - flood_started)
    a_llm = sum(
        1
        for r in flood_rows
        if r["outcome"] == "llm" and r["finished"] and float(r["finished"]) <= b_done_at
    )
    a_done = sum(1 for r in flood_rows if r["finished"] and float(r["finished"]) <= b_done_at)
    dropped = await discard_backlog(db, a.id, timeout_s=args.timeout)
    capacity = min(args.key_rpm / 60.0, args.key_concurrency / max(args.llm_latency, 1e-9))
    result = {
        "mode": mode,
        "redeploy_s": redeploy_s,
        "alone": alone,
        "under": under,
        "ratio": under["p95"] / alone["p95"] if under["p95"] and alone["p95"] else None,
        "a_llm_notes_during_b": a_llm,
        "a_finished_during_b": a_done,
        "a_llm_per_s": a_llm / window,
        "key_capacity_per_s": capacity,
        "b_llm_per_s": under["llm"] / window,
        "window_s": window,
        "a_discarded": dropped,
        "key_alone": _delta(key_before, key_alone),
        "key_under_flood": _delta(key_alone, key_under),
    }
    say(
        f"under the flood: B {under['llm']}/{under['sent']} LLM notes, p95 "
        f"{fmt(under['p95'], 2)} s (x{fmt(result['ratio'], 2)}); A {a_llm} LLM notes; "
        f"key answered 429 {result['key_under_flood']['rate_limited']} times"
    )
    return result


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: after[k] - before[k] for k in ("requests", "rate_limited", "payment_required")}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from simulators.llm import KeyLimits

    machine = machine_info()
    async with pipeline_rig(
        args,
        "llmshare",
        2,
        AI_AGENTS_LLM_PROVIDER_RPM=str(args.key_rpm),
        AI_AGENTS_LLM_PROVIDER_CONCURRENCY=str(args.key_concurrency),
    ) as rig:
        rig.sims.llm.keys.configure(
            KeyLimits(requests_per_minute=args.key_rpm, concurrency=args.key_concurrency)
        )
        a, b = rig.tenants
        results = [
            await measure_mode(mode, args, rig.ray_serve, rig.db, rig.sims, rig.sender, a, b)
            for mode in args.modes
        ]
        return {"machine": machine, "args": vars(args), "results": results}


def report(data: dict[str, Any]) -> str:
    args = data["args"]
    rows = []
    for r in data["results"]:
        alone, under = r["alone"], r["under"]
        used = r["b_llm_per_s"] + r["a_llm_per_s"]
        rows.append(
            [
                r["mode"],
                f"{alone['llm']}/{alone['sent']}",
                f"{under['llm']}/{under['sent']} ({fmt(100 * (under['llm_share'] or 0), 0)} %)",
                "yes" if (under["llm_share"] or 0) >= 0.95 else "no",
                f"{fmt(alone['p50'], 2)} / {fmt(alone['p95'], 2)}",
                f"{fmt(under['p50'], 2)} / {fmt(under['p95'], 2)}",
                fmt(r["ratio"], 2),
                "yes" if r["ratio"] is not None and r["ratio"] <= 1.5 else "no",
                f"{r['a_llm_notes_during_b']} ({fmt(r['a_llm_per_s'], 2)}/s)",
                f"{fmt(used, 2)} of {fmt(r['key_capacity_per_s'], 2)}",
                r["key_under_flood"]["rate_limited"],
            ]
        )
    text = print_table(
        f"One LLM key shared: A floods {args['flood']}, B sends {args['b_rate']}/s for "
        f"{args['b_seconds']} s; key {args['key_rpm']} requests/min, {args['key_concurrency']} "
        f"at once; LLM {args['llm_latency']} s",
        [
            "mode",
            "B LLM notes alone",
            "B LLM notes under flood",
            ">= 95 %",
            "B p50/p95 s alone",
            "B p50/p95 s under flood",
            "p95 ratio",
            "<= 1.5",
            "A LLM notes while B measured",
            "LLM notes/s used of the key's",
            "429s under flood",
        ],
        rows,
    )
    text += print_table(
        "Why B's other notes were not written by the LLM (under the flood)",
        ["mode", "reasons (count)"],
        [
            [r["mode"], "; ".join(f"{why} ({n})" for why, n in r["under"]["why_not_llm"]) or "-"]
            for r in data["results"]
        ],
    )
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.llm_share",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--b-rate", type=float, default=1.0)
    parser.add_argument("--b-seconds", type=float, default=60.0)
    parser.add_argument("--key-rpm", type=int, default=120, help="the key's requests/minute")
    parser.add_argument("--key-concurrency", type=int, default=8, help="the key's calls at once")
    parser.add_argument("--modes", default="before,after", help="before, after (in this order)")
    add_pipeline_options(parser, pools=False)
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    args.modes = [m for m in str(args.modes).split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; choose from {', '.join(MODES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)
