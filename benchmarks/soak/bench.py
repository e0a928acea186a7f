"""Soak — the service for an hour under steady load and a schedule of faults: does memory stay
flat, does the data stay bounded, is anything lost or written twice?

    python -m benchmarks.soak                      # one hour
    python -m benchmarks.soak --duration 180       # the 3-minute smoke run (CI)

The whole service as ``ai-agents serve`` runs it (Ray with its dashboard, the product's Serve
application behind HAProxy, embedded PostgreSQL) with the SDP simulator and the LLM simulator
answering well (``--llm-latency`` 1 s +- 20 %). ``--tenants`` tenants (3) share ``--rate``
signed webhooks/s (5), each a new ticket; a refused delivery is tried again for up to
``--retry-for`` seconds as SDP would; a technician rates every ``--feedback-every``-th note.

Every ``--sample-every`` seconds (60; a tenth of that for runs under ten minutes) it samples,
per kind of process (Ingress, Dispatcher, each pool, rate limiters, Serve controller and
proxy, HAProxy, raylet, GCS, dashboard, PostgreSQL): RSS, PSS, open file descriptors and
threads; PostgreSQL's connections and each table's rows and bytes; the bytes in Ray's and
PostgreSQL's logs; end-to-end and acknowledgement latency; refused deliveries and failed jobs.

Faults (``benchmarks/soak/schedule.py``, scaled with ``--duration``): a replica SIGKILLed
every 10 minutes, LLM 429 bursts, a 10-minute LLM 402, a minute of SDP 503s, a PostgreSQL
restart. Retention runs with ``--retention-minutes`` (short, so table sizes reach their
bound within the run).

The report: the timeline, growth per hour after the warm-up (``--warmup``, a sixth of the
run) per process kind and per table, latency per quarter over the jobs no fault touched, and
a verdict per goal: RSS growth <= 10 MB/h per kind, fds and threads flat, p95 within +-10 %
of the first quarter's, 0 webhooks lost, 0 duplicate notes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.rig.process_sampler import ProcessSampler
from benchmarks.rig.report import add_pipeline_options, machine_info, run_script
from benchmarks.rig.stack import Rig, pipeline_rig
from benchmarks.soak import analysis
from benchmarks.soak.load import SoakLoad
from benchmarks.soak.report import report
from benchmarks.soak.sampling import database_sample, log_bytes, process_sample, ray_logs_dir
from benchmarks.soak.schedule import Fault, fault_schedule, kill_replica, restart_postgres
from core.ingress_mode import ingress_environment

RETAINED = ("enhancements", "enhancement_feedback", "audit_log")


def say(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def retention_environment(args: argparse.Namespace) -> dict[str, str]:
    if args.retention_minutes <= 0:
        return {}
    days = f"{args.retention_minutes / 1440:.6f}"
    return {
        "AI_AGENTS_RETENTION_DAYS_JOBS": days,
        "AI_AGENTS_RETENTION_DAYS_FEEDBACK": days,
        "AI_AGENTS_RETENTION_DAYS_AUDIT": days,
        "AI_AGENTS_RETENTION_EVERY_S": str(args.retention_every),
    }


class Soak:
    """One run: the load, the sampler and the fault schedule against one rig."""

    def __init__(self, args: argparse.Namespace, rig: Rig) -> None:
        self.args = args
        self.rig = rig
        self.faults = fault_schedule(args.duration, burst=args.burst) if args.faults else []
        self.load = SoakLoad(
            rig.ray_serve.url,
            rig.sims,
            rig.tenants,
            rate=args.rate,
            retry_for_s=args.retry_for,
            feedback_every=args.feedback_every,
        )
        self.sampler = ProcessSampler(rig.db.postmaster_pid)
        self.samples: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.start = 0.0
        self.pgdata = rig.db.data_dir / "postgres"
        self._ray_logs: Path | None = None

    async def run(self) -> None:
        self.start = time.time()
        self._ray_logs = ray_logs_dir()
        sampling = asyncio.create_task(self._sample_forever())
        faults = asyncio.create_task(self._inject_faults())
        try:
            await self.load.run(self.args.duration)
            say(f"load done: {len(self.load.webhooks)} webhooks; draining")
            deadline = time.monotonic() + self.args.drain
            while self.load.outstanding and time.monotonic() < deadline:
                await asyncio.sleep(2)
                with contextlib.suppress(OSError, Exception):
                    await self.load.poll(self.rig.db.owner_url)
            await asyncio.sleep(2)  # let the last notes land in the simulator's record
            await faults
        finally:
            sampling.cancel()
            faults.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            await self._sample()  # the final state
            await self.load.close()
            self.sampler.stop()

    async def _sample_forever(self) -> None:
        """One sample every ``sample_every`` seconds on a fixed schedule: a slow sample (a busy
        machine) does not push the later ones back, so a run has its number of samples."""
        due = time.monotonic()
        while True:
            due += self.args.sample_every
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._sample()

    async def _sample(self) -> None:
        t = time.time() - self.start
        self.sampler.postmaster_pid = self.rig.db.postmaster_pid  # a restart changes it
        processes = await asyncio.to_thread(process_sample, self.sampler)
        try:
            database: dict[str, Any] | None = await database_sample(self.rig.db.owner_url)
            await self.load.poll(self.rig.db.owner_url)
        except (OSError, Exception) as exc:  # noqa: BLE001 - PostgreSQL may be restarting
            say(f"database sample at {t:.0f} s failed: {type(exc).__name__}: {exc}")
            database = None
        # the simulators' request logs are for tests; a long run would only grow them
        self.rig.sims.llm.clear_requests()
        self.rig.sims.sdp.clear_calls()
        self.samples.append(
            {
                "t": round(t, 1),
                "processes": processes,
                "database": database,
                "log_bytes": {
                    "ray": log_bytes(self._ray_logs),
                    "postgres": log_bytes(self.pgdata / "log"),
                },
                "outstanding": len(self.load.outstanding),
            }
        )
        total_rss = sum(k["rss_mb"] for k in processes.values())
        job_rows = ((database or {}).get("tables") or {}).get("enhancements", {}).get("rows")
        say(
            f"t={t:.0f}s sent={len(self.load.webhooks)} finished={len(self.load.finished)} "
            f"outstanding={len(self.load.outstanding)} rss={total_rss:.0f} MB job rows={job_rows}"
        )

    async def _inject_faults(self) -> None:
        actions: list[tuple[float, str, Fault]] = []
        for fault in self.faults:
            actions.append((fault.start_s, "start", fault))
            if fault.end_s > fault.start_s:
                actions.append((fault.end_s, "end", fault))
        actions.sort(key=lambda a: a[0])
        llm_402: Any = None
        for at, phase, fault in actions:
            delay = self.start + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            result: dict[str, Any] = {}
            try:
                if fault.kind == "kill":
                    assert fault.target is not None
                    result = await asyncio.to_thread(kill_replica, fault.target)
                elif fault.kind == "llm_429":
                    self.rig.sims.llm.add_fault("rate_limit", count=fault.count, retry_after=1.0)
                elif fault.kind == "llm_402" and phase == "start":
                    llm_402 = self.rig.sims.llm.add_fault("no_credits", count=None)
                elif fault.kind == "llm_402":
                    self.rig.sims.llm.remove_fault(llm_402.id)
                elif fault.kind == "sdp_5xx":
                    probability = 1.0 if phase == "start" else 0.0
                    for tenant in self.rig.tenants:
                        self.rig.sims.sdp.update_faults(
                            tenant.id, http_5xx_probability=probability, http_5xx_status=503
                        )
                elif fault.kind == "pg_restart":
                    result = await asyncio.to_thread(restart_postgres, self.pgdata)
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                result = {"error": f"{type(exc).__name__}: {exc}"}
            event = {
                "fault": fault.to_dict(),
                "phase": phase,
                "t": round(time.time() - self.start, 1),
                **result,
            }
            self.events.append(event)
            say(f"{phase} {fault.label()} at {event['t']:.0f} s {result or ''}")

    def results(self) -> dict[str, Any]:
        start, args = self.start, self.args
        webhooks = [
            {
                "sent": w.first_sent - start,
                "accepted": (w.accepted_at - start) if w.accepted_at else None,
                "ack_ms": w.ack_ms,
                "statuses": w.statuses,
                "enhancement_id": w.enhancement_id,
            }
            for w in self.load.webhooks
        ]
        finished = {k: asdict(v) for k, v in self.load.finished.items()}
        margin = analysis.fault_margin_s(args.duration)
        jobs = analysis.job_latencies(list(finished.values()), self.faults, start, margin)
        notes = self._notes_per_enhancement()
        within = [s for s in self.samples if s["t"] <= args.duration + args.sample_every / 2]
        retention_from = max(args.warmup, args.retention_minutes * 60 + 2 * args.retention_every)
        return {
            "windows": analysis.windows(within, webhooks, jobs, self.faults),
            "kinds": analysis.kind_growth(within, args.warmup),
            "quarters": analysis.quarters(jobs, args.duration, args.warmup),
            "tables": analysis.table_growth(within, retention_from, RETAINED),
            "tables_from_s": retention_from,
            "deliveries": analysis.deliveries(webhooks, finished, notes),
            "feedback": self.load.feedback,
            "faults": [f.to_dict() | {"label": f.label()} for f in self.faults],
            "events": self.events,
            "samples": self.samples,
            "fault_margin_s": margin,
            "log_mb_h": {
                source: analysis.per_hour(
                    [s["t"] for s in within if s["t"] >= args.warmup],
                    [s["log_bytes"][source] / 1e6 for s in within if s["t"] >= args.warmup],
                )
                for source in ("ray", "postgres")
            },
        }

    def _notes_per_enhancement(self) -> dict[str, int]:
        notes = self.rig.sims.notes_by_ticket(t.id for t in self.rig.tenants)
        out = {}
        for hook in self.load.webhooks:
            if hook.enhancement_id:
                marker = f"AI-Agents enhancement {hook.enhancement_id}"
                texts = notes.get((hook.tenant_id, hook.ticket_id), [])
                out[hook.enhancement_id] = sum(1 for text in texts if marker in text)
        return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    env: dict[str, Any] = {**ingress_environment("haproxy"), **retention_environment(args)}
    async with pipeline_rig(args, "soak", args.tenants, dashboard=True, **env) as rig:
        deploy_s = rig.ray_serve.deploy()
        say(f"up: ray {rig.ray_start_s:.1f} s, deploy {deploy_s:.1f} s; {args.duration:.0f} s run")
        soak = Soak(args, rig)
        await soak.run()
        return {"machine": machine, "args": vars(args), **soak.results()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=5.0, help="webhooks/s, all tenants")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=0.0, help="default: a sixth of the run")
    parser.add_argument("--sample-every", type=float, default=0.0, help="default: 60 s")
    parser.add_argument("--retry-for", type=float, default=120.0, help="re-deliver this long")
    parser.add_argument("--feedback-every", type=int, default=10, help="0: no feedback")
    parser.add_argument("--burst", type=int, default=30, help="429 answers per LLM burst")
    parser.add_argument(
        "--faults",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-faults: the steady load alone (to tell growth from recovery)",
    )
    parser.add_argument(
        "--retention-minutes", type=float, default=10.0, help="jobs, feedback, audit; 0: default"
    )
    parser.add_argument("--retention-every", type=float, default=60.0, help="purge interval s")
    parser.add_argument("--drain", type=float, default=300.0, help="wait for the last jobs")
    add_pipeline_options(parser, pools=False)
    parser.set_defaults(llm_latency=1.0)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    args.warmup = args.warmup or args.duration / 6
    args.sample_every = args.sample_every or (60.0 if args.duration >= 600 else args.duration / 18)
    if 0 < args.retention_minutes * 60 < 3 * args.sample_every:
        parser.error("--retention-minutes must cover three samples (jobs are read before purge)")
    return args


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)
