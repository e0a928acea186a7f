"""Benchmark 5 — footprint: resident memory idle and under the pipeline load, and how long
``ai-agents demo --tickets 1`` takes to its first note.

    python -m benchmarks.footprint --load-seconds 20 --demo-runs 3

Memory: the whole system as ``ai-agents serve`` runs it (Ray with its dashboard, the product
Serve graph, embedded PostgreSQL, both simulators in this process); RSS and PSS summed over every
process of the run, per kind of process, idle (after one warm-up ticket per tenant) and in the
middle of ``--rate`` webhooks/s for ``--load-seconds`` (benchmark 2's latency phase). RSS
counts shared pages (the Ray/Python libraries every worker maps) once per process; PSS splits
them, so it is the better "how much RAM does this take" figure.

Startup: ``ai-agents demo --tickets 1 --json`` as a subprocess: the first run on a fresh data
directory (initdb, migrations, demo import) and the following runs reusing it; the demo's own
``seconds`` (start -> note written) and the process wall time (imports and shutdown included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.pipeline.bench import run_phase
from benchmarks.rig.process_sampler import ProcessSampler
from benchmarks.rig.report import add_pipeline_options, finish, fmt, machine_info, print_table
from benchmarks.rig.stack import pipeline_rig
from core.ports import free_port
from local_stack.database import make_data_dir, remove_data_dir
from local_stack.results import wait_terminal

MIB = 2**20


def demo_run(data_dir: Path, timeout_s: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_SERVE_"))}
    started = time.monotonic()
    proc = subprocess.run(
        [
            "ai-agents",
            "demo",
            "--tickets",
            "1",
            "--json",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port()),
            "--dashboard-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=REPO,
    )
    wall = time.monotonic() - started
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {}
    summary = report.get("summary", {})
    return {
        "exit": proc.returncode,
        "wall_s": wall,
        "demo_s": summary.get("seconds"),
        "notes": summary.get("notes_written"),
        "statuses": summary.get("statuses"),
        "stderr_tail": proc.stderr[-600:] if proc.returncode else "",
    }


async def memory_part(args: argparse.Namespace) -> dict[str, Any]:
    async with pipeline_rig(
        args, "foot", args.tenants, dashboard=True, AI_AGENTS_PER_TENANT_INFLIGHT="1000"
    ) as rig:
        db, tenants, sender = rig.db, rig.tenants, rig.sender
        rig.ray_serve.deploy()
        sampler = ProcessSampler(db.postmaster_pid)
        warm = await sender.burst(len(tenants), lambda i: tenants[i % len(tenants)])
        await wait_terminal(db, [s.enhancement_id for s in warm if s.enhancement_id], 120)
        await asyncio.sleep(args.settle)
        idle = await asyncio.to_thread(sampler.memory)
        load = await run_phase(
            "latency",
            sender,
            db,
            sampler,
            tenants,
            rate=args.rate,
            count=int(args.rate * args.load_seconds),
            timeout_s=180,
        )
        sampler.stop()
        return {"idle": idle, "load": load}


def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    memory = asyncio.run(memory_part(args)) if args.load_seconds >= 0 else None
    demos = []
    if args.demo_runs:
        data_dir = make_data_dir("demo")
        try:
            for i in range(args.demo_runs):
                print(
                    f"[footprint] ai-agents demo --tickets 1 ({'cold' if i == 0 else 'warm'})",
                    file=sys.stderr,
                    flush=True,
                )
                demos.append(demo_run(data_dir, args.demo_timeout))
        finally:
            remove_data_dir(data_dir)
    return {"machine": machine, "args": vars(args), "memory": memory, "demos": demos}


def report(data: dict[str, Any]) -> str:
    text = ""
    memory = data["memory"]
    if memory:
        idle, load = memory["idle"], memory["load"]
        mid = load.get("memory_mid") or {}
        kinds = sorted(
            set(idle["by_kind"]) | set(mid.get("by_kind", {})),
            key=lambda k: -idle["by_kind"].get(k, {}).get("pss", 0),
        )
        rows = []
        for kind in kinds:
            a = idle["by_kind"].get(kind, {"rss": 0, "pss": 0, "count": 0})
            b = mid.get("by_kind", {}).get(kind, {"rss": 0, "pss": 0, "count": 0})
            rows.append(
                [
                    kind,
                    a["count"],
                    fmt(a["rss"] / MIB, 0),
                    fmt(a["pss"] / MIB, 0),
                    b["count"],
                    fmt(b["rss"] / MIB, 0),
                    fmt(b["pss"] / MIB, 0),
                ]
            )
        rows.append(
            [
                "TOTAL",
                sum(e["count"] for e in idle["by_kind"].values()),
                fmt(idle["rss_bytes"] / MIB, 0),
                fmt(idle["pss_bytes"] / MIB, 0),
                sum(e["count"] for e in mid.get("by_kind", {}).values()),
                fmt(mid.get("rss_bytes", 0) / MIB, 0),
                fmt(mid.get("pss_bytes", 0) / MIB, 0),
            ]
        )
        args = data["args"]
        text += print_table(
            f"Resident memory, idle and under load ({args['rate']}/s, LLM {args['llm_latency']} s;"
            f" peak RSS under load {fmt(load['peak_rss_mib'], 0)} MiB)",
            [
                "process kind",
                "idle n",
                "idle RSS MiB",
                "idle PSS MiB",
                "load n",
                "load RSS MiB",
                "load PSS MiB",
            ],
            rows,
        )
    if data["demos"]:
        rows = [
            [
                ("cold (fresh data dir)" if i == 0 else "warm (data dir reused)"),
                d["exit"],
                fmt(d["demo_s"]),
                fmt(d["wall_s"]),
                d["notes"],
            ]
            for i, d in enumerate(data["demos"])
        ]
        warm = [d["wall_s"] for d in data["demos"][1:] if d["exit"] == 0]
        if warm:
            rows.append(
                [
                    "warm median",
                    "",
                    fmt(
                        statistics.median(
                            [d["demo_s"] for d in data["demos"][1:] if d["demo_s"]] or [0]
                        )
                    ),
                    fmt(statistics.median(warm)),
                    "",
                ]
            )
        text += print_table(
            "ai-agents demo --tickets 1: start to first note",
            ["run", "exit", "demo's own seconds", "process wall s", "notes"],
            rows,
        )
        for d in data["demos"]:
            if d["exit"]:
                print("demo failed:", d["stderr_tail"])
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.footprint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--load-seconds", type=float, default=20.0, help="-1 skips the memory part")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before sampling")
    add_pipeline_options(parser, pools=False)
    parser.add_argument("--demo-runs", type=int, default=3, help="0 skips the demo timing")
    parser.add_argument("--demo-timeout", type=float, default=300.0)
    parser.add_argument("--json", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = main_async(args)
    finish(data, data["machine"], report, args.json)
