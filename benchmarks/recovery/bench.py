"""Benchmark 4 — recovery: crashes and restarts during a 500-ticket run lose nothing and write
no note twice.

    python -m benchmarks.recovery --tickets 500

``--tickets`` webhooks (spread over ``--tenants``) are accepted, then while they are processed:
  1. at ``--kill-at`` of completions, one Enhancer replica is SIGKILLed (PID from the Serve
     controller's replica details; the same PIDs ``ray.util.state.list_actors`` reports for
     class names ending ``:Enhancer``);
  2. at ``--restart-at``, the whole Serve application is restarted the hard way: every replica
     of every deployment (Ingress, Dispatcher, Enhancer, ContextGatherer, Synthesizer) is
     SIGKILLed at once and Serve's controller brings them back;
  3. at ``--redeploy-at`` (0 disables), the graceful way: ``serve.shutdown()`` then
     ``serve.start`` + ``serve.run`` of the same application.
Then it waits for every job and checks, against the SDP simulator's record of notes: lost
(accepted but not completed, or completed without its note), duplicates (more than one note
carrying ``AI-Agents enhancement <id>`` for the same ticket), and for each disruption the time
until completions resume and until the completion rate is back to half its previous value.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

from benchmarks.rig.report import add_pipeline_options, fmt, machine_info, print_table, run_script
from benchmarks.rig.stack import pipeline_rig
from local_stack.ray_serve import APP_NAME, RayServe, replica_pids
from local_stack.results import fetch_jobs, wait_terminal

DEPLOYMENTS = ("Ingress", "Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer")


class _Stalled(Exception):
    pass


def kill_one_enhancer() -> dict[str, Any]:
    pids = replica_pids("Enhancer").get("Enhancer", [])
    if not pids:
        return {"action": "kill one Enhancer", "killed": []}
    with contextlib.suppress(ProcessLookupError):  # a stale PID: the replica just died
        os.kill(pids[0], signal.SIGKILL)
    return {"action": f"SIGKILL 1 of {len(pids)} Enhancer replica(s)", "killed": pids[:1]}


def kill_all_replicas() -> dict[str, Any]:
    pids = replica_pids()
    killed = []
    for name in DEPLOYMENTS:
        for pid in pids.get(name, []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # stale PID from the controller: already gone
                continue
            killed.append(pid)
    return {"action": f"SIGKILL all {len(killed)} replicas", "killed": killed}


def build(pools: str) -> Any:
    from benchmarks.pipeline.bench import PREVIOUS_POOLS
    from benchmarks.rig.apps import build_pipeline_app

    return build_pipeline_app(PREVIOUS_POOLS if pools == "previous" else None)


def serve_diagnostics() -> dict[str, Any]:
    """Deployment states, replica states and logical resources (why nothing is flowing)."""
    import ray
    from ray import serve

    out: dict[str, Any] = {
        "available": ray.available_resources().get("CPU"),
        "total": ray.cluster_resources().get("CPU"),
        "deployments": {},
    }
    app = serve.status().applications.get(APP_NAME)
    for name, dep in app.deployments.items() if app else []:
        out["deployments"][name] = {
            "status": str(dep.status).split(".")[-1],
            "replicas": dict(dep.replica_states),
        }
    return out


def redeploy(ray_serve: RayServe, pools: str) -> dict[str, Any]:
    from ray import serve

    started = time.monotonic()
    serve.shutdown()
    serve.start(http_options={"host": "127.0.0.1", "port": ray_serve.http_port})
    ray_serve.deploy(build(pools))
    return {
        "action": "serve.shutdown() + serve.run()",
        "blocking_s": round(time.monotonic() - started, 1),
    }


def completion_times(rows: list[dict[str, Any]]) -> list[float]:
    return sorted(
        float(r["finished"]) for r in rows if r["status"] == "completed" and r["finished"]
    )


def recovery_figures(
    event_at: float, ends: list[float], window_s: float = 5.0, *, before_at: float | None = None
) -> dict[str, float | None]:
    """From the end of the disruption (``event_at``): the first completion, and the first
    1-second window reaching half the completion rate of the ``window_s`` before it began."""
    start = before_at if before_at is not None else event_at
    before = [t for t in ends if start - window_s <= t < start]
    rate_before = len(before) / window_s
    after = [t for t in ends if t >= event_at]
    first = after[0] - event_at if after else None
    back = None
    if after and rate_before > 0:
        # first 1-second bin after the event whose completions reach half the previous rate
        t = event_at
        while t < after[-1]:
            if sum(1 for x in after if t <= x < t + 1.0) >= 0.5 * rate_before:
                back = t + 1.0 - event_at
                break
            t += 0.25
    return {"rate_before": rate_before, "first_completion_s": first, "rate_back_s": back}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    say = lambda m: print(f"[recovery] {m}", file=sys.stderr, flush=True)  # noqa: E731
    async with pipeline_rig(
        args, "recov", args.tenants, AI_AGENTS_PER_TENANT_INFLIGHT=str(args.per_tenant_inflight)
    ) as rig:
        db, sims, tenants, sender = rig.db, rig.sims, rig.tenants, rig.sender
        ray_serve = rig.ray_serve
        ray_serve.deploy(build(args.pools))
        started = time.time()
        sent = await sender.burst(args.tickets, lambda i: tenants[i % len(tenants)])
        ids = [s.enhancement_id for s in sent if s.enhancement_id]
        say(f"{len(ids)}/{args.tickets} accepted in {time.time() - started:.1f} s")
        plan = [
            (args.kill_at, "kill"),
            (args.restart_at, "restart"),
            (args.redeploy_at, "redeploy"),
        ]
        plan = [(frac, what) for frac, what in plan if frac > 0]
        events: list[dict[str, Any]] = []

        last = {"done": -1, "at": time.monotonic()}
        stalled: dict[str, Any] = {}

        async def progress(done: int) -> None:
            if done != last["done"]:
                last.update(done=done, at=time.monotonic())
            elif not stalled and time.monotonic() - last["at"] > args.stall_s:
                stalled.update(
                    await asyncio.to_thread(serve_diagnostics), completed=done, after_s=args.stall_s
                )
                say(f"no completion for {args.stall_s:.0f} s: {json.dumps(stalled)}")
                raise _Stalled()
            while plan and done >= plan[0][0] * len(ids):
                _, what = plan.pop(0)
                at = time.time()
                if what == "kill":
                    event = await asyncio.to_thread(kill_one_enhancer)
                elif what == "restart":
                    event = await asyncio.to_thread(kill_all_replicas)
                else:
                    event = await asyncio.to_thread(redeploy, ray_serve, args.pools)
                event.update(at=at, end=time.time(), completed_before=done)
                events.append(event)
                say(f"{event['action']} at {done} completed")

        with contextlib.suppress(_Stalled):
            await wait_terminal(db, ids, args.timeout, progress)
        await asyncio.sleep(1)  # let the last notes land in the simulator's record
        rows = await fetch_jobs(db, ids)
        notes = sims.notes_by_ticket(t.id for t in tenants)
        by_id = {r["id"]: r for r in rows}
        lost = duplicates = missing_note = 0
        unfinished = sum(1 for r in rows if r["status"] in ("queued", "running"))
        for s in sent:
            if not s.enhancement_id:
                continue
            row = by_id.get(s.enhancement_id)
            marker = f"AI-Agents enhancement {s.enhancement_id}"
            count = sum(1 for n in notes.get((s.tenant_id, s.ticket_id), []) if marker in n)
            if row is None or row["status"] != "completed":
                lost += 1
            elif count == 0:
                missing_note += 1
            duplicates += max(0, count - 1)
        ends = completion_times(rows)
        for event in events:
            event.update(recovery_figures(event["end"], ends, before_at=event["at"]))
            event["completed_during"] = sum(1 for t in ends if event["at"] <= t < event["end"])
            event["remaining_after"] = sum(1 for t in ends if t >= event["end"]) + unfinished
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        return {
            "machine": machine,
            "args": vars(args),
            "accepted": len(ids),
            "unfinished": unfinished,
            "missing_rows": len(ids) - len(rows),
            "stalled": stalled,
            "rejected": args.tickets - len(ids),
            "statuses": statuses,
            "lost": lost,
            "missing_notes": missing_note,
            "duplicate_notes": duplicates,
            "retried": sum(1 for r in rows if (r["attempts"] or 0) > 1),
            "max_attempts": max((r["attempts"] or 0) for r in rows) if rows else 0,
            "wall_s": (max(ends) - started) if ends else None,
            "events": [
                {k: v for k, v in e.items() if k != "killed"} | {"killed": len(e.get("killed", []))}
                for e in events
            ],
            "errors": sorted({(r["error"] or "")[:120] for r in rows if r["attempts"] > 1})[:5],
        }


def report(data: dict[str, Any]) -> str:
    text = print_table(
        f"Recovery: {data['args']['tickets']} tickets, {data['args']['tenants']} tenants, "
        f"pools {data['args']['pools']}",
        [
            "accepted",
            "completed",
            "not completed (rows still queued/running)",
            "failed",
            "rows missing (lost)",
            "completed without note",
            "duplicate notes",
            "jobs retried",
            "max attempts",
            "wall s",
        ],
        [
            [
                data["accepted"],
                data["statuses"].get("completed", 0),
                data["unfinished"],
                data["statuses"].get("failed", 0),
                data["missing_rows"],
                data["missing_notes"],
                data["duplicate_notes"],
                data["retried"],
                data["max_attempts"],
                fmt(data["wall_s"]),
            ]
        ],
    )
    if data["stalled"]:
        st = data["stalled"]
        text += print_table(
            f"STALLED: no completion for {st['after_s']:.0f} s after {st['completed']} "
            f"completions; logical CPUs available {st['available']} of {st['total']}",
            ["deployment", "status", "replica states"],
            [
                [name, d["status"], json.dumps(d["replicas"])]
                for name, d in st["deployments"].items()
            ],
        )
    text += print_table(
        "Disruptions: time until the backlog flows again",
        [
            "disruption",
            "at completed",
            "replicas killed",
            "action took s",
            "completed during it",
            "left after it",
            "rate before /s",
            "first completion after s",
            "rate back to 50 % after s",
        ],
        [
            [
                e["action"],
                e["completed_before"],
                e["killed"],
                fmt(e["end"] - e["at"]),
                e["completed_during"],
                e["remaining_after"],
                fmt(e["rate_before"]),
                fmt(e["first_completion_s"]),
                fmt(e["rate_back_s"]),
            ]
            for e in data["events"]
        ],
    )
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--kill-at", type=float, default=0.15)
    parser.add_argument("--restart-at", type=float, default=0.35)
    parser.add_argument("--redeploy-at", type=float, default=0.6)
    add_pipeline_options(parser)
    parser.add_argument(
        "--per-tenant-inflight",
        type=int,
        default=16,
        help="keeps a queued backlog behind the in-flight jobs at every "
        "disruption (5 tenants x 16 = 80 in flight)",
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--stall-s",
        type=float,
        default=60.0,
        help="give up (and report why) after this long without a completion",
    )
    parser.add_argument("--json", default="")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)
