"""Benchmark 6 — scale-out on a multi-node Ray cluster on this machine.

    python -m benchmarks.scaleout --modes throughput,autoscale,node-loss \\
        --llm-latency 10 --backlog 2000 --replicas 1,2,4

A local multi-node cluster (``ray.cluster_utils.Cluster``: one raylet per node, all on
loopback) whose worker nodes have ``--node-cpus`` logical CPUs, and an application whose
Enhancer and Synthesizer replicas each reserve ``--replica-cpus`` (``ray_actor_options``), so
the head node (``--head-cpus``: Ingress, Dispatcher, ContextGatherer) cannot hold them and each
worker node holds one Enhancer and one Synthesizer: more replicas means more nodes, the chain
KubeRay runs (replica -> pending CPU demand -> new worker pod).

Modes:
  throughput  for each count in ``--replicas``: that many worker nodes and that many fixed
              Enhancer/Synthesizer replicas (``num_replicas`` override), each replica holding
              ``--per-replica`` jobs (``max_ongoing_requests``), the Dispatcher's cap at
              replicas x per-replica (``AI_AGENTS_DISPATCH_MAX_INFLIGHT``); ``--backlog``
              tickets; enhancements/s between 10 % and 90 % of completions, and the ratio to
              linear (rate / (replicas x rate at the smallest count)).
  autoscale   the pools' autoscaling config exactly as ``actors/deployment_options.py`` holds it
              (whatever policy it names), ``max(--replicas)`` worker nodes present; a backlog
              spike, then: seconds until the Enhancer reached its maximum (or its peak) replica
              count, the peak, seconds from the backlog drained to back at min_replicas.
  node-loss   2 worker nodes, 2 replicas; at ``--kill-at`` of completions one worker node's
              processes are killed (``Cluster.remove_node``, not graceful) and a fresh node is
              added; then every job must complete with exactly one note (counted in the SDP
              simulator by the enhancement's marker).
  ray-autoscaler  (alone) Ray's own autoscaler adds and removes the worker nodes (the
              ``fake_multinode`` provider, ``benchmarks/rig/autoscaling_cluster.py``); the pools
              autoscale as ``actors/deployment_options.py`` holds them with max_replicas =
              max(--replicas); a backlog spike, then seconds to the first added node and to the
              peak, enhancements/s scaled out, seconds from drained to replicas at min and to
              idle nodes removed (``--idle-timeout-min``); ``benchmarks/scaleout/autoscaler.py``.
In the first three modes this script adds the nodes itself (``ray.cluster_utils.Cluster``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

# Every node of the local cluster, and this driver, on loopback (read when Ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from benchmarks.rig.cluster import (  # noqa: E402
    LocalCluster,
    deployment_nodes,
    replicas_not_running,
    scaled_app,
)
from benchmarks.rig.report import (  # noqa: E402
    fmt,
    machine_info,
    print_table,
    run_script,
    steady_rate,  # noqa: E402
)
from benchmarks.rig.stack import TicketSender, service_env  # noqa: E402
from benchmarks.scaleout.autoscaler import MODE as RAY_AUTOSCALER  # noqa: E402
from benchmarks.scaleout.autoscaler import (  # noqa: E402
    mode_ray_autoscaler,
    report_ray_autoscaler,
    service_overrides,
    start_cluster,
)
from benchmarks.scaleout.jobs import note_check, send_backlog  # noqa: E402
from local_stack.database import make_data_dir, owner_count, remove_data_dir, start_database  # noqa: E402
from local_stack.results import wait_terminal  # noqa: E402
from local_stack.simulators import Simulators  # noqa: E402
from local_stack.tenants import create_tenants  # noqa: E402

say = lambda m: print(f"[scaleout] {m}", file=sys.stderr, flush=True)  # noqa: E731


async def mode_throughput(
    args: argparse.Namespace, rig: dict[str, Any], cluster: LocalCluster
) -> list[dict[str, Any]]:
    out = []
    for n in args.replicas:
        cluster.deploy(scaled_app(args, replicas=n), workers=n)
        say(f"throughput: {n} replica(s) on {cluster.worker_count()} worker node(s)")
        started = time.time()
        sent = await send_backlog(rig, args.backlog)
        rows = await wait_terminal(
            rig["db"], [s.enhancement_id for s in sent if s.enhancement_id], args.timeout
        )
        placement = deployment_nodes()
        out.append(
            {
                "replicas": n,
                "worker_nodes": cluster.worker_count(),
                "enhancer_nodes": len(set(placement.get("Enhancer", []))),
                "accepted": len(sent),
                "completed": sum(1 for r in rows if r["status"] == "completed"),
                "steady_rate": steady_rate(rows),
                "wall_s": time.time() - started,
            }
        )
        say(str(out[-1]))
    base = next((r["steady_rate"] for r in out if r["steady_rate"]), None)
    for r in out:
        linear = base * r["replicas"] / out[0]["replicas"] if base else None
        r["ratio_to_linear"] = r["steady_rate"] / linear if linear and r["steady_rate"] else None
    return out


async def dispatcher_view() -> dict[str, Any]:
    """What the Dispatcher saw: in flight, its cap, the running replicas it was told of, the
    backlog it measured, and whether intake had priority (which holds the pools)."""
    from ray import serve

    from actors.deployment_options import APP_NAME, DISPATCHER

    keys = ("inflight", "inflight_limit", "running_replicas", "backlog", "intake_priority")
    try:
        status = await serve.get_deployment_handle(DISPATCHER, APP_NAME).status.remote()
    except Exception as exc:  # noqa: BLE001 - a sample, not a result
        return {"error": type(exc).__name__}
    return {k: status.get(k) for k in keys}


async def mode_autoscale(
    args: argparse.Namespace, rig: dict[str, Any], cluster: LocalCluster
) -> dict[str, Any]:
    from actors.deployment_options import ENHANCER, pool_options

    bounds = pool_options(ENHANCER).get("autoscaling_config") or {}
    cluster.deploy(scaled_app(args, replicas=0), workers=max(args.replicas))
    say(f"autoscale: Enhancer autoscaling_config from pool_options: {bounds}")
    # Start from rest: replicas left by an earlier mode scale in first (downscale delay).
    floor = bounds.get("min_replicas", 1)
    settle_until = time.monotonic() + bounds.get("downscale_delay_s", 0) + 90
    while time.monotonic() < settle_until:
        if len(deployment_nodes().get(ENHANCER, [])) <= floor:
            break
        await asyncio.sleep(2)
    at_rest = len(deployment_nodes().get(ENHANCER, []))
    spike = time.time()
    sent = await send_backlog(rig, args.backlog)
    ids = [s.enhancement_id for s in sent if s.enhancement_id]
    timeline: list[tuple[float, int, int]] = []  # (seconds since spike, replicas, remaining)
    pools: list[dict[str, Any]] = []  # every pool's running and not-yet-running replicas
    drained_at = None
    deadline = time.monotonic() + args.timeout + args.scale_in_wait
    while time.monotonic() < deadline:
        placement = deployment_nodes()
        replicas = len(placement.get(ENHANCER, []))
        waiting = Counter(r["deployment"] for r in replicas_not_running())
        remaining = await owner_count(
            rig["db"],
            "SELECT count(*) FROM enhancements WHERE id = ANY($1::uuid[]) AND "
            "status NOT IN ('completed', 'failed')",
            ids,
        )
        now = time.time() - spike
        timeline.append((round(now, 1), replicas, remaining))
        pools.append(
            {
                "t": round(now, 1),
                "running": {name: len(nodes) for name, nodes in placement.items()},
                "not_running": dict(waiting),
                "dispatcher": await dispatcher_view(),
            }
        )
        if remaining == 0 and drained_at is None:
            drained_at = now
        if drained_at is not None and replicas <= bounds.get("min_replicas", 1):
            break
        await asyncio.sleep(2)
    peak = max(r for _, r, _ in timeline)
    peak_at = next(t for t, r, _ in timeline if r == peak)
    back_at = next(
        (
            t
            for t, r, _ in timeline
            if drained_at is not None and t >= drained_at and r <= bounds.get("min_replicas", 1)
        ),
        None,
    )
    return {
        "autoscaling_config": bounds,
        "backlog": len(sent),
        "replicas_at_spike": at_rest,
        "peak_replicas": peak,
        "seconds_to_peak": peak_at,
        "drained_s": drained_at,
        "seconds_drained_to_scaled_in": (back_at - drained_at)
        if back_at is not None and drained_at is not None
        else None,
        "timeline": timeline,
        "pools": pools,
    }


async def mode_node_loss(
    args: argparse.Namespace, rig: dict[str, Any], cluster: LocalCluster
) -> dict[str, Any]:
    cluster.deploy(scaled_app(args, replicas=2), workers=2)
    before = deployment_nodes()
    sent = await send_backlog(rig, args.backlog)
    ids = [s.enhancement_id for s in sent if s.enhancement_id]
    removed: dict[str, Any] = {}

    async def progress(done: int) -> None:
        if not removed and done >= args.kill_at * len(ids):
            removed.update(
                cluster.remove_worker_with(before.get("Enhancer", [])), completed_before=done
            )
            say(f"node-loss: removed {removed} at {done}/{len(ids)}; adding a fresh node")
            cluster.ensure_workers(2)

    rows = await wait_terminal(rig["db"], ids, args.timeout, progress)
    await asyncio.sleep(1)  # let the last notes land in the simulator's record
    return {
        "accepted": len(ids),
        "head_node": cluster.head_node_id,
        "placement_before": before,
        "removed": removed,
        "placement_after": deployment_nodes(),
        "statuses": {
            s: sum(1 for r in rows if r["status"] == s) for s in {r["status"] for r in rows}
        },
        **note_check(rig["sims"], rig["tenants"], sent, rows),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    data_dir = make_data_dir("scale")
    sims = Simulators(
        llm_latency_s=args.llm_latency,
        llm_jitter_pct=args.jitter,
        sdp_latency_ms=args.sdp_latency_ms,
    )
    cluster: Any = None  # LocalCluster, or AutoscalingLocalCluster for ray-autoscaler
    sender = None
    try:
        db = await start_database(data_dir)
        tenants = await create_tenants(db, args.tenants, "scale", sdp_url=sims.sdp_url, sims=sims)
        env = service_env(
            db,
            llm_url=sims.llm_url,
            AI_AGENTS_PER_TENANT_INFLIGHT="100000",
            AI_AGENTS_JOB_RETRY_BASE_S="0.5",
            **(service_overrides(args) if RAY_AUTOSCALER in args.modes else {}),
        )
        started = time.monotonic()
        if RAY_AUTOSCALER in args.modes:
            cluster = start_cluster(args, env, data_dir)
        else:
            cluster = LocalCluster(
                env, head_cpus=args.head_cpus, node_cpus=args.node_cpus, temp_dir=data_dir
            )
        say(f"cluster up in {time.monotonic() - started:.1f} s")
        sender = TicketSender(cluster.url, sims)
        rig = {"db": db, "sims": sims, "tenants": tenants, "sender": sender}
        result: dict[str, Any] = {"machine": machine, "args": vars(args)}
        # each mode takes the cluster kind it runs on (LocalCluster or AutoscalingLocalCluster)
        runners: dict[str, Callable[..., Awaitable[dict[str, Any] | list[dict[str, Any]]]]] = {
            "throughput": mode_throughput,
            "autoscale": mode_autoscale,
            "node-loss": mode_node_loss,
            RAY_AUTOSCALER: mode_ray_autoscaler,
        }
        for mode in args.modes:
            result[mode] = await runners[mode](args, rig, cluster)
        return result
    finally:
        if sender is not None:
            await sender.close()
        if cluster is not None:
            cluster.shutdown()
        sims.stop()
        remove_data_dir(data_dir)


def report(data: dict[str, Any]) -> str:
    text = ""
    args = data["args"]
    if "throughput" in data:
        text += print_table(
            f"Scale-out: LLM {args['llm_latency']} s, backlog {args['backlog']}, "
            f"{args['per_replica']} jobs per replica, {args['replica_cpus']} CPU per replica",
            [
                "Enhancer/Synthesizer replicas",
                "worker nodes",
                "nodes holding Enhancers",
                "completed",
                "enh/s (10-90 %)",
                "x linear",
                "wall s",
            ],
            [
                [
                    r["replicas"],
                    r["worker_nodes"],
                    r["enhancer_nodes"],
                    f"{r['completed']}/{r['accepted']}",
                    fmt(r["steady_rate"], 2),
                    fmt(r["ratio_to_linear"], 2),
                    fmt(r["wall_s"], 0),
                ]
                for r in data["throughput"]
            ],
        )
    if "autoscale" in data:
        a = data["autoscale"]
        text += print_table(
            "Autoscaling (pool_options.py's config)",
            [
                "backlog",
                "replicas at spike",
                "peak replicas",
                "s spike -> peak",
                "s to drain",
                "s drained -> min replicas",
            ],
            [
                [
                    a["backlog"],
                    a["replicas_at_spike"],
                    a["peak_replicas"],
                    fmt(a["seconds_to_peak"]),
                    fmt(a["drained_s"]),
                    fmt(a["seconds_drained_to_scaled_in"]),
                ]
            ],
        )
    if "node-loss" in data:
        n = data["node-loss"]
        text += print_table(
            "Worker node removed mid-run",
            ["accepted", "statuses", "lost", "missing notes", "duplicate notes", "jobs retried"],
            [
                [
                    n["accepted"],
                    n["statuses"],
                    n["lost"],
                    n["missing_notes"],
                    n["duplicate_notes"],
                    n["retried"],
                ]
            ],
        )
    if RAY_AUTOSCALER in data:
        text += report_ray_autoscaler(data[RAY_AUTOSCALER])
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scaleout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--modes", default="throughput,autoscale,node-loss")
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument(
        "--per-replica",
        type=int,
        default=32,
        help="jobs one Enhancer/Synthesizer replica holds (max_ongoing_requests)",
    )
    parser.add_argument("--replica-cpus", type=float, default=1.0)
    parser.add_argument("--head-cpus", type=float, default=1.0)
    parser.add_argument("--node-cpus", type=float, default=2.0)
    parser.add_argument("--llm-latency", type=float, default=10.0)
    parser.add_argument("--jitter", type=float, default=10.0)
    parser.add_argument("--sdp-latency-ms", type=float, default=50.0)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--kill-at", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--scale-in-wait", type=float, default=300.0)
    parser.add_argument(
        "--downscale-delay",
        type=float,
        default=None,
        help=f"{RAY_AUTOSCALER}: replaces the pools' downscale_delay_s (default: as deployed)",
    )
    parser.add_argument(
        "--idle-timeout-min",
        type=float,
        default=0.25,
        help=f"{RAY_AUTOSCALER}: minutes a worker node stays idle before the autoscaler "
        "removes it (idle_timeout_minutes)",
    )
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    args.replicas = [int(r) for r in args.replicas.split(",") if r]
    if RAY_AUTOSCALER in args.modes and len(args.modes) > 1:
        parser.error(f"--modes {RAY_AUTOSCALER} runs alone (its own autoscaling cluster)")
    return args


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)
