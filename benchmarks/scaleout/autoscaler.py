"""``benchmarks.scaleout --modes ray-autoscaler``: Ray's own autoscaler adds and removes the nodes.

The cluster is ``AutoscalingLocalCluster`` (Ray's ``fake_multinode`` provider): a head node with
room for the Ingress, Dispatcher and ContextGatherer, and a worker node type of ``--node-cpus``
CPUs, 0 to ``max(--replicas)`` nodes. The Enhancer and Synthesizer reserve ``--replica-cpus``
per replica and autoscale exactly as ``actors/deployment_options.py`` says (on the durable backlog)
except that ``max_replicas`` is ``max(--replicas)`` (and ``--downscale-delay``, if given,
replaces ``downscale_delay_s``: the CI test's shortcut). Nothing here adds a node: a backlog
spike raises the replica targets, the replicas that do not fit stay pending, the autoscaler
sees the pending CPU demand and launches worker nodes, and once the backlog is gone and the
pools are back at ``min_replicas`` it terminates the nodes left idle.

Recorded every second: claimable backlog (``app_dispatch_backlog()``, what the Dispatcher
reports to the autoscaling policy), jobs not yet finished, running Enhancer/Synthesizer replicas
and the nodes holding them (Serve controller), alive worker nodes (``ray.nodes()``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.rig.autoscaling_cluster import AutoscalingLocalCluster
from benchmarks.rig.cluster import deployment_nodes, replicas_not_running, scaled_app
from benchmarks.rig.report import fmt, print_table, steady_rate
from benchmarks.scaleout.jobs import note_check, send_backlog
from local_stack.ray_serve import deploy_app
from local_stack.results import fetch_jobs

MODE = "ray-autoscaler"
say = lambda m: print(f"[scaleout] {m}", file=sys.stderr, flush=True)  # noqa: E731


def enhancer_target() -> float:
    from actors.deployment_options import ENHANCER, pool_options

    return float(pool_options(ENHANCER)["autoscaling_config"]["target_ongoing_requests"])


def service_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The Dispatcher's in-flight bound (``AI_AGENTS_DISPATCH_MAX_INFLIGHT``, default 256) raised
    to what ``max(--replicas)`` Enhancers take at their target: the cap in use is still
    running Enhancer replicas x target, so it follows the autoscaling instead of pinning the
    run at one replica's worth."""
    return {"AI_AGENTS_DISPATCH_MAX_INFLIGHT": str(int(max(args.replicas) * enhancer_target()))}


def start_cluster(
    args: argparse.Namespace, env: dict[str, str], temp_dir: Path
) -> AutoscalingLocalCluster:
    return AutoscalingLocalCluster(
        env,
        head_cpus=args.head_cpus,
        worker_cpus=args.node_cpus,
        max_workers=max(args.replicas),
        temp_dir=temp_dir,
        idle_timeout_minutes=args.idle_timeout_min,
    )


def _first(samples: list[dict[str, Any]], test: Any, after: float = float("-inf")) -> Any:
    return next((s for s in samples if s["t"] >= after and test(s)), None)


async def mode_ray_autoscaler(
    args: argparse.Namespace, rig: dict[str, Any], cluster: AutoscalingLocalCluster
) -> dict[str, Any]:
    import asyncpg

    from actors.deployment_options import ENHANCER, SYNTHESIZER, pool_options

    overrides: dict[str, Any] = {"max_replicas": max(args.replicas)}
    if args.downscale_delay is not None:
        overrides["downscale_delay_s"] = args.downscale_delay
    bounds = {**pool_options(ENHANCER)["autoscaling_config"], **overrides}
    floor = int(bounds["min_replicas"])
    say(f"{MODE}: pools' autoscaling from pool_options.py with {overrides} laid over: {bounds}")
    started = time.monotonic()
    await asyncio.to_thread(deploy_app, scaled_app(args, replicas=0, autoscaling=overrides))
    deploy_s = time.monotonic() - started
    at_rest = await asyncio.to_thread(cluster.worker_node_ids)
    placement_at_rest = await asyncio.to_thread(deployment_nodes)
    say(f"{MODE}: deployed in {deploy_s:.1f} s; worker nodes at rest: {len(at_rest)}")

    conn = await asyncpg.connect(rig["db"].owner_url)
    ids: list[str] = []
    samples: list[dict[str, Any]] = []
    spike = time.time()

    async def sample() -> dict[str, Any]:
        placement = await asyncio.to_thread(deployment_nodes)
        nodes = await asyncio.to_thread(cluster.worker_node_ids)
        claimable = await conn.fetchval(
            "SELECT coalesce(sum(claimable), 0) FROM app_dispatch_backlog()"
        )
        unfinished = await conn.fetchval(
            "SELECT count(*) FROM enhancements WHERE id = ANY($1::uuid[]) AND "
            "status NOT IN ('completed', 'failed')",
            ids,
        )
        enhancer, synthesizer = placement.get(ENHANCER, []), placement.get(SYNTHESIZER, [])
        holding = {n for ns in placement.values() for n in ns}
        # Why a worker node without replicas is not idle yet (Ray's own words), if it is not.
        activity = await asyncio.to_thread(cluster.node_activity)
        transitioning = await asyncio.to_thread(replicas_not_running)
        return {
            "t": round(time.time() - spike, 1),
            "claimable": int(claimable),
            "unfinished": int(unfinished) if ids else None,
            "enhancers": len(enhancer),
            "synthesizers": len(synthesizer),
            "worker_nodes": len(nodes),
            "idle_worker_nodes": len([n for n in nodes if n not in holding]),
            "enhancer_nodes": sorted(set(enhancer)),
            "replica_nodes": sorted(n for n in holding if n != cluster.head_node_id),
            "nodes": nodes,
            "without_replicas": {n: a for n, a in activity.items() if n not in holding},
            "replicas_not_running": transitioning,
        }

    sending = asyncio.create_task(send_backlog(rig, args.backlog))
    deadline = time.monotonic() + args.timeout + args.scale_in_wait
    drained_t: float | None = None
    last_said = 0.0
    try:
        while time.monotonic() < deadline:
            if sending.done() and not ids:
                ids = [s.enhancement_id for s in sending.result() if s.enhancement_id]
            s = await sample()
            samples.append(s)
            if s["t"] - last_said >= 10:
                last_said = s["t"]
                say(f"{MODE}: " + ", ".join(f"{k}={s[k]}" for k in list(s)[:7]))
            if ids and s["unfinished"] == 0 and drained_t is None:
                drained_t = s["t"]
            at_min = s["enhancers"] <= floor and s["synthesizers"] <= floor
            # settled: no replica still stopping either (a stopping replica keeps its node
            # busy, so "no idle node" alone would end a run before the node it held is removed)
            settled = at_min and not s["replicas_not_running"] and s["idle_worker_nodes"] == 0
            if drained_t is not None and settled:
                break
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - spike - s["t"])))
    finally:
        await conn.close()
    sent = await sending
    ids = [s.enhancement_id for s in sent if s.enhancement_id]
    rows = await fetch_jobs(rig["db"], ids)
    await asyncio.sleep(1)  # let the last notes land in the simulator's record
    checks = note_check(rig["sims"], rig["tenants"], sent, rows)

    rest = len(at_rest)
    peak_nodes = max(s["worker_nodes"] for s in samples)
    peak_replicas = max(s["enhancers"] for s in samples)
    first_node = _first(samples, lambda s: s["worker_nodes"] > rest)
    peak_node_sample = _first(samples, lambda s: s["worker_nodes"] == peak_nodes)
    finished = [float(r["finished"]) - spike for r in rows if r["finished"] is not None]
    drained_s = max(finished) if len(finished) == len(ids) and finished else None
    back_at_min = (
        _first(samples, lambda s: s["enhancers"] <= floor, after=drained_s)
        if drained_s is not None
        else None
    )
    nodes_removed = (
        _first(
            samples,
            lambda s: s["idle_worker_nodes"] == 0 and s["worker_nodes"] < peak_nodes,
            after=back_at_min["t"],
        )
        if back_at_min is not None
        else None
    )
    # Scaled out: from the moment the peak Enhancer count was running to the last completion.
    peak_replica_sample = _first(samples, lambda s: s["enhancers"] == peak_replicas)
    scaled_rate = None
    if peak_replicas > floor and peak_replica_sample is not None and drained_s is not None:
        window = [f for f in finished if f >= peak_replica_sample["t"]]
        span = drained_s - peak_replica_sample["t"]
        scaled_rate = len(window) / span if span > 0 and len(window) >= 10 else None
    seen = sorted({n for s in samples for n in s["nodes"]} | set(at_rest))
    end_nodes = samples[-1]["nodes"] if samples else []
    return {
        "autoscaling_config": bounds,
        "overrides": overrides,
        "dispatch_max_inflight": service_overrides(args)["AI_AGENTS_DISPATCH_MAX_INFLIGHT"],
        "cluster_config": cluster.config,
        "cluster_start_s": cluster.start_s,
        "deploy_s": deploy_s,
        "head_node": cluster.head_node_id,
        "worker_nodes_at_rest": at_rest,
        "placement_at_rest": placement_at_rest,
        "backlog": len(ids),
        "s_spike_to_first_node": first_node["t"] if first_node else None,
        "s_spike_to_peak_nodes": peak_node_sample["t"] if peak_nodes > rest else None,
        "peak_worker_nodes": peak_nodes,
        "peak_enhancers": peak_replicas,
        "s_spike_to_peak_enhancers": peak_replica_sample["t"] if peak_replica_sample else None,
        "enh_per_s_scaled_out": scaled_rate,
        "enh_per_s_10_90": steady_rate(rows),
        "drained_s": drained_s,
        "s_drained_to_replicas_at_min": back_at_min["t"] - drained_s if back_at_min else None,
        "s_drained_to_nodes_removed": nodes_removed["t"] - drained_s if nodes_removed else None,
        "worker_nodes_seen": seen,
        "worker_nodes_at_end": end_nodes,
        "worker_nodes_removed": [n for n in seen if n not in end_nodes],
        "worker_nodes_dead": await asyncio.to_thread(cluster.dead_worker_node_ids),
        "statuses": {
            s: sum(1 for r in rows if r["status"] == s) for s in {r["status"] for r in rows}
        },
        **checks,
        "timeline": samples,
    }


def report_ray_autoscaler(a: dict[str, Any]) -> str:
    return print_table(
        f"Ray's autoscaler (fake_multinode): pools as pool_options.py with {a['overrides']}, "
        f"Dispatcher bound {a['dispatch_max_inflight']}",
        [
            "backlog",
            "nodes at rest",
            "s spike -> first node",
            "s -> peak nodes",
            "peak nodes",
            "peak Enhancers",
            "enh/s scaled out",
            "s to drain",
            "s drained -> replicas at min",
            "s drained -> idle nodes removed",
            "completed",
            "lost / missing / duplicate notes",
        ],
        [
            [
                a["backlog"],
                len(a["worker_nodes_at_rest"]),
                fmt(a["s_spike_to_first_node"]),
                fmt(a["s_spike_to_peak_nodes"]),
                a["peak_worker_nodes"],
                a["peak_enhancers"],
                fmt(a["enh_per_s_scaled_out"], 2),
                fmt(a["drained_s"]),
                fmt(a["s_drained_to_replicas_at_min"]),
                fmt(a["s_drained_to_nodes_removed"]),
                f"{a['statuses'].get('completed', 0)}/{a['backlog']}",
                f"{a['lost']} / {a['missing_notes']} / {a['duplicate_notes']}",
            ]
        ],
    )
