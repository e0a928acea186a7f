"""Benchmark 2 — the enhancement pipeline end to end, and what it costs in CPU and memory.

    python -m benchmarks.pipeline --rate 20 --latency-seconds 30 --backlog 1500

The whole product graph (``actors.app``) on a fresh local Ray, embedded PostgreSQL,
the LLM simulator at 2 s +- 20 % and the SDP simulator at 50 ms per call, ``--tenants`` tenants
each seeded with a demo tenant's history/KB/assets and generous limits (LLM, SDP and webhook
rates far above the load; ``AI_AGENTS_PER_TENANT_INFLIGHT`` high). Tickets are created in the
SDP simulator and announced with signed webhooks, so every job gathers context, calls the LLM
and writes its private note.

Phase 1 (latency): ``--rate`` webhooks/s open loop for ``--latency-seconds``; end-to-end is
received -> completed (the job row's timestamps; the note is written before completion).
Phase 2 (capacity): ``--backlog`` webhooks as fast as possible; sustained enhancements/s is the
completion rate between 10 % and 90 % of completions.
CPU per enhancement = CPU seconds of every process of the run (Ray core, Serve controller and
proxy, all replicas, PostgreSQL, this process with both simulators) over the phase / jobs;
"marginal" subtracts the idle system's background CPU (measured for ``--idle-seconds`` before
phase 1), and the CPU ceiling is (cores - idle cores) / marginal CPU per job.

Variants (``--configs``, each in a fresh process and Ray):
  default         the product as it is (actors/deployment_options.py, Serve's proxy)
  haproxy         the product with ``--ingress haproxy`` (HAProxy + direct ingress +
                  RAY_SERVE_THROUGHPUT_OPTIMIZED=1 + RAY_SERVE_LOG_TO_STDERR=1)
  tput            the throughput flags without HAProxy
  previous-pools  many small replicas (``PREVIOUS_POOLS``: 64 in flight per
                  Enhancer/Synthesizer replica, up to 8 replicas, 0.25 logical CPU each)
  floor           the pipeline's floor (``benchmarks.pipeline.floor``): the same intake and
                  per-enhancement work (claim, context queries, LLM call, SDP note, completion)
                  with the product's own functions, in one plain asyncio process — no Ray, no
                  hops. When it is in the run, every other config is also reported as a ratio
                  to it (throughput: higher is better; CPU per enhancement: lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.pipeline.report import FLOOR, MIB, ratios_to_floor, report
from benchmarks.rig.process_sampler import ProcessSampler, classify
from benchmarks.rig.profiling import start_record, summarise
from benchmarks.rig.report import (
    add_pipeline_options,
    e2e_seconds,
    finish,
    machine_info,
    percentile,
    stage_breakdown,
    steady_rate,
)
from benchmarks.rig.serve_child import child_process, wait_http
from benchmarks.rig.stack import Rig, TicketSender, pipeline_rig
from core.ingress_mode import HAPROXY_FLAGS
from local_stack.database import Database, remove_data_dir
from local_stack.ray_serve import replica_pids
from local_stack.results import wait_terminal
from local_stack.tenants import Tenant

TPUT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_LOG_TO_STDERR": "1"}
OLD_IO_POOL = {"min_replicas": 1, "upscale_delay_s": 5, "downscale_delay_s": 120}
PREVIOUS_POOLS = {
    # Many small replicas with a 0.25 logical-CPU reservation each: more per-process overhead
    # per job, and a scaled-out Enhancer could take every CPU slot of a 2-CPU node.
    "Enhancer": {
        "max_ongoing_requests": 64,
        "max_queued_requests": 256,
        "autoscaling_config": {**OLD_IO_POOL, "max_replicas": 8, "target_ongoing_requests": 32},
        "ray_actor_options": {"num_cpus": 0.25},
    },
    "Synthesizer": {
        "max_ongoing_requests": 64,
        "max_queued_requests": 256,
        "autoscaling_config": {**OLD_IO_POOL, "max_replicas": 8, "target_ongoing_requests": 32},
        "ray_actor_options": {"num_cpus": 0.25},
    },
    "ContextGatherer": {
        "max_ongoing_requests": 32,
        "max_queued_requests": 256,
        "autoscaling_config": {**OLD_IO_POOL, "max_replicas": 4, "target_ongoing_requests": 16},
        "ray_actor_options": {"num_cpus": 0.25},
    },
}
VARIANTS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "default": ("the product: pool_options.py, Serve's proxy", {}, {}),
    "haproxy": ("the product with --ingress haproxy", HAPROXY_FLAGS, {}),
    "tput": ("RAY_SERVE_THROUGHPUT_OPTIMIZED=1 + LOG_TO_STDERR=1", TPUT, {}),
    "previous-pools": ("pool options before 2026-11-26, Serve's proxy", {}, PREVIOUS_POOLS),
    "floor": ("floor: one asyncio process, same work, no Ray", {}, {}),
}


async def run_phase(
    name: str,
    sender: TicketSender,
    db: Database,
    sampler: ProcessSampler,
    tenants: list[Tenant],
    *,
    rate: float | None,
    count: int,
    timeout_s: float,
    profile_s: float = 0.0,
    profile_dir: str = "",
) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    peak_running = 0
    mem_mid: dict[str, Any] | None = None

    async def progress(done: int) -> None:
        nonlocal peak_running, mem_mid
        running = await conn.fetchval("SELECT count(*) FROM enhancements WHERE status='running'")
        peak_running = max(peak_running, running)
        if mem_mid is None and done >= count // 2:
            mem_mid = await asyncio.to_thread(sampler.memory)

    pick = lambda i: tenants[i % len(tenants)]  # noqa: E731
    sampler.start_window()
    profiling = (
        asyncio.create_task(
            asyncio.to_thread(profile_pipeline, profile_s, name, profile_dir, sampler)
        )
        if profile_s > 0
        else None
    )
    started = time.time()
    if rate:
        sent = await sender.open_loop(rate, count, pick)
    else:
        sent = await sender.burst(count, pick)
    sent_s = time.time() - started
    ids = [s.enhancement_id for s in sent if s.enhancement_id]
    rows = await wait_terminal(db, ids, timeout_s, progress)
    window = sampler.end_window()
    await conn.close()
    profile = await profiling if profiling is not None else None
    wall = time.time() - started
    e2e = e2e_seconds(rows)
    outcomes: dict[str, int] = {}
    for r in rows:
        key = r["status"] if r["status"] != "completed" else f"completed/{r['outcome']}"
        outcomes[key] = outcomes.get(key, 0) + 1
    finished = [float(r["finished"]) for r in rows if r["finished"] is not None]
    overall = len(finished) / (max(finished) - started) if finished else None
    completed = sum(1 for r in rows if r["status"] == "completed")
    cpu_ms = 1000 * window["cpu_s"] / max(1, completed)
    return {
        "phase": name,
        "offered": count,
        "offered_rate": rate,
        "send_s": round(sent_s, 1),
        "accepted": len(ids),
        "rejected": len(sent) - len(ids),
        "completed": completed,
        "outcomes": outcomes,
        "wall_s": wall,
        "e2e_p50": percentile(e2e, 50),
        "e2e_p95": percentile(e2e, 95),
        "e2e_p99": percentile(e2e, 99),
        "e2e_max": max(e2e) if e2e else None,
        "ack_p99_ms": percentile([s.ack_ms for s in sent], 99),
        "steady_rate": steady_rate(rows),
        "overall_rate": overall,
        "peak_running": peak_running,
        "cpu_s": window["cpu_s"],
        "cpu_ms_per_job": cpu_ms,
        "cpu_ms_by_kind": {
            k: round(1000 * v / max(1, completed), 2)
            for k, v in sorted(window["cpu_by_kind"].items(), key=lambda kv: -kv[1])
        },
        "cores_used": window["cpu_s"] / wall,
        "wall_s_exact": wall,
        "peak_rss_mib": window["peak_rss_bytes"] / MIB,
        "memory_mid": mem_mid,
        "stages": stage_breakdown(rows),
        "profile": profile,
        "retried": sum(1 for r in rows if (r["attempts"] or 0) > 1),
    }


def profile_pipeline(
    seconds: float, phase: str, keep_dir: str, sampler: ProcessSampler
) -> dict[str, Any]:
    """py-spy one replica of each deployment, the Serve proxy and controller, and this process
    (simulators) for ``seconds``, starting 2 s into the phase."""
    import tempfile

    time.sleep(2)
    targets = {name: pids[0] for name, pids in replica_pids().items() if pids}
    for proc in sampler.processes():
        kind = classify(proc)
        if (
            kind in ("serve proxy", "serve controller", "rate limiter actors")
            and kind not in targets
        ):
            targets[kind] = proc.pid
    workdir = Path(keep_dir or tempfile.mkdtemp(prefix="aab-prof-", dir="/tmp"))
    recorders = {
        name: start_record(pid, seconds, workdir / f"{phase}-{name}.txt".replace(" ", "_"))
        for name, pid in targets.items()
    }
    out = {}
    for name, rec in recorders.items():
        rec.wait(seconds + 30)
        out[name] = summarise(workdir / f"{phase}-{name}.txt".replace(" ", "_"))
    if not keep_dir:
        remove_data_dir(workdir)
    return out


def replica_counts(floor: bool = False) -> dict[str, int]:
    if floor:
        return {"floor process": 1}
    return {name: len(pids) for name, pids in replica_pids().items()}


@contextlib.contextmanager
def started_floor(rig: Rig) -> Iterator[float]:
    """The floor process on the port the rig reserved for Serve; yields its start-up seconds."""
    started = time.monotonic()
    with child_process(
        [sys.executable, "-m", "benchmarks.pipeline.floor", "--port", str(rig.ray_serve.http_port)],
        rig.ray_serve.env,
    ):
        wait_http(f"{rig.ray_serve.url}/health")
        yield time.monotonic() - started


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    from benchmarks.rig.apps import build_pipeline_app

    floor = args.single == FLOOR
    async with (
        pipeline_rig(
            args,
            "pipe",
            args.tenants,
            start_ray=not floor,
            AI_AGENTS_PER_TENANT_INFLIGHT=str(args.per_tenant_inflight),
        ) as rig,
        contextlib.AsyncExitStack() as cleanup,
    ):
        db, tenants, sender, ray_start = rig.db, rig.tenants, rig.sender, rig.ray_start_s
        seeded = rig.seeded
        if floor:
            deploy_s = cleanup.enter_context(started_floor(rig))
        else:
            deploy_s = rig.ray_serve.deploy(build_pipeline_app(VARIANTS[args.single][2]))
        sampler = ProcessSampler(db.postmaster_pid)
        say = lambda m: print(f"[pipeline] {m}", file=sys.stderr, flush=True)  # noqa: E731
        say(f"up: ray {ray_start:.1f} s, deploy {deploy_s:.1f} s; warming up")
        warm = await sender.burst(len(tenants), lambda i: tenants[i % len(tenants)])
        await wait_terminal(db, [s.enhancement_id for s in warm if s.enhancement_id], 120)
        await asyncio.sleep(3)
        idle = await asyncio.to_thread(sampler.memory)
        sampler.start_window()  # background CPU of the idle system (controller loops, agents)
        await asyncio.sleep(args.idle_seconds)
        idle_cpu = sampler.end_window()
        idle_cores = idle_cpu["cpu_s"] / args.idle_seconds
        phases = []
        if args.latency_seconds > 0:
            say(f"phase 1: {args.rate}/s for {args.latency_seconds} s")
            phases.append(
                await run_phase(
                    "latency",
                    sender,
                    db,
                    sampler,
                    tenants,
                    rate=args.rate,
                    count=int(args.rate * args.latency_seconds),
                    timeout_s=args.timeout,
                )
            )
            phases[-1]["replicas"] = replica_counts(floor)
            say(json.dumps({k: phases[-1][k] for k in ("completed", "e2e_p95", "cpu_ms_per_job")}))
        if args.backlog > 0:
            say(f"phase 2: backlog of {args.backlog}")
            phases.append(
                await run_phase(
                    "capacity",
                    sender,
                    db,
                    sampler,
                    tenants,
                    rate=None,
                    count=args.backlog,
                    timeout_s=args.timeout,
                    profile_s=args.profile_seconds if args.single in args.profile else 0.0,
                    profile_dir=args.profile_dir,
                )
            )
            phases[-1]["replicas"] = replica_counts(floor)
            say(
                json.dumps(
                    {k: phases[-1][k] for k in ("completed", "steady_rate", "cpu_ms_per_job")}
                )
            )
        sampler.stop()
        for phase in phases:
            marginal = phase["cpu_s"] - idle_cores * phase["wall_s"]
            phase["marginal_cpu_ms_per_job"] = 1000 * marginal / max(1, phase["completed"])
        return {
            "variant": args.single,
            "label": VARIANTS[args.single][0],
            "idle_cores": idle_cores,
            "idle_cpu_by_kind": {
                k: v / args.idle_seconds for k, v in idle_cpu["cpu_by_kind"].items()
            },
            "machine": machine,
            "args": vars(args),
            "seeded": seeded,
            "startup": {"ray_s": ray_start, "deploy_s": deploy_s},
            "memory_idle": idle,
            "phases": phases,
        }


def run_variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each variant in its own process: Serve reads its feature flags at import time."""
    import os
    import subprocess
    import tempfile

    runs = []
    for name in args.configs:
        if name not in VARIANTS:
            raise SystemExit(f"unknown config {name!r}; known: {sorted(VARIANTS)}")
        out = Path(tempfile.mkstemp(prefix="aab-pipe-", suffix=".json")[1])
        passthrough = [a for a in (args.argv or []) if a]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
        env.update(VARIANTS[name][1])
        print(f"[pipeline] {name}: {VARIANTS[name][0]}", file=sys.stderr, flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.pipeline",
                *passthrough,
                "--single",
                name,
                "--json",
                str(out),
            ],
            check=True,
            env=env,
            cwd=REPO,
        )
        runs.append(json.loads(out.read_text()))
        out.unlink()
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=20.0, help="phase 1 webhooks/s")
    parser.add_argument("--latency-seconds", type=float, default=25.0)
    parser.add_argument("--backlog", type=int, default=1000, help="phase 2 webhooks")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="measure the idle system's background CPU this long",
    )
    parser.add_argument("--tenants", type=int, default=10)
    add_pipeline_options(parser, pools=False)
    parser.add_argument("--per-tenant-inflight", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=240.0, help="per phase drain")
    parser.add_argument(
        "--configs",
        default="floor,default,haproxy,previous-pools",
        help=f"variants to compare, from {sorted(VARIANTS)}",
    )
    parser.add_argument("--single", default="", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="", help="variants to py-spy during phase 2")
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=10.0,
        help="py-spy every deployment for this long during phase 2",
    )
    parser.add_argument("--profile-dir", default="", help="keep the raw py-spy stacks here")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.profile = [c for c in args.profile.split(",") if c]
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.single:
        data = asyncio.run(main_async(args))
        Path(args.json).write_text(json.dumps(data, default=str))
        return
    skip = {"--json", "--configs"}
    args.argv = [
        a
        for i, a in enumerate(argv)
        if a.split("=")[0] not in skip and (i == 0 or argv[i - 1] not in skip)
    ]
    runs = run_variants(args)
    ratios_to_floor(runs)
    finish(runs, runs[0]["machine"], report, args.json)
