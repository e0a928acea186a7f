"""Does Serve's HAProxy ingress reach an Ingress replica on another node?

    python -m benchmarks.haproxy_multinode [--json PATH]

``ai-agents serve`` runs Ray 2.60's HAProxy front with direct ingress
(``RAY_SERVE_ENABLE_HA_PROXY=1`` and the throughput flags): HAProxy listens on the HTTP port and
forwards to each Ingress replica's own uvicorn. On one node that is all loopback. Here: a
``LocalCluster`` (head + one worker node, loopback) with Serve's HTTP front on the head only,
and the Ingress forced onto the worker node by a custom resource only that node has. Evidence
collected: where every replica runs (Serve controller), ``GET /health`` and
``GET /api/v1/ready`` through the head's HTTP port, one real ticket sent there (webhook status
and the job's end state), and HAProxy's generated config (its ``bind``/``server`` lines).
Nothing in the product's ingress defaults changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on loopback

from actors.deployment_options import INGRESS, pool_options  # noqa: E402
from benchmarks.rig.cluster import LocalCluster, deployment_nodes  # noqa: E402
from benchmarks.rig.report import machine_info  # noqa: E402
from benchmarks.rig.stack import TicketSender, service_env  # noqa: E402
from core.ingress_mode import HAPROXY_FLAGS  # noqa: E402
from local_stack.database import make_data_dir, remove_data_dir, start_database  # noqa: E402
from local_stack.ray_serve import deploy_app, isolated_serve_env, serve_instance_details  # noqa: E402
from local_stack.results import wait_terminal  # noqa: E402
from local_stack.simulators import Simulators  # noqa: E402
from local_stack.tenants import create_tenants  # noqa: E402

MARKER = "ingress_node"  # custom resource only the worker node has
say = lambda m: print(f"[haproxy-multinode] {m}", file=sys.stderr, flush=True)  # noqa: E731


def haproxy_lines() -> list[str]:
    """The ``frontend``/``bind``/``backend``/``server`` lines of every HAProxy config Serve
    generated (one per node running HAProxy, in a directory named by the node id under the
    configured location's directory)."""
    base = Path(os.environ.get("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "")).parent
    keep = ("bind", "server", "backend", "frontend", "default_backend", "use_backend")
    lines = []
    for path in sorted(base.rglob("*.cfg")) if base.is_dir() else []:
        lines.append(f"# {path}")
        lines += [
            line.strip()
            for line in path.read_text().splitlines()
            if line.strip().split(" ", 1)[0] in keep
        ]
    return lines or [f"(no HAProxy config under {base})"]


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from benchmarks.rig.apps import build_pipeline_app

    data_dir = make_data_dir("hpx")
    sims = Simulators(llm_latency_s=0.5, llm_jitter_pct=0, sdp_latency_ms=20)
    cluster = sender = None
    out: dict[str, Any] = {"machine": machine_info()}
    try:
        db = await start_database(data_dir)
        tenants = await create_tenants(db, 1, "hpx", sdp_url=sims.sdp_url, sims=sims)
        env = {**service_env(db, llm_url=sims.llm_url), **HAPROXY_FLAGS, **isolated_serve_env()}
        cluster = LocalCluster(env, head_cpus=args.head_cpus, node_cpus=2, temp_dir=data_dir)
        cluster.ensure_workers(1, resources={MARKER: 1})
        ingress_actor = pool_options(INGRESS)["ray_actor_options"]
        pinned = {"ray_actor_options": {**ingress_actor, "resources": {MARKER: 0.1}}}
        await asyncio.to_thread(deploy_app, build_pipeline_app({INGRESS: pinned}))
        placement = deployment_nodes()
        out.update(
            head_node=cluster.head_node_id,
            worker_node=cluster.workers[0].node_id,
            placement=placement,
            http_url=cluster.url,
            env={k: v for k, v in os.environ.items() if k.startswith("RAY_SERVE_")},
        )
        say(f"placement: {placement}")
        async with httpx.AsyncClient(timeout=10) as http:
            for path in ("/health", "/api/v1/ready"):
                try:
                    r = await http.get(cluster.url + path)
                    out[path] = {"status": r.status_code, "body": r.text[:600]}
                except httpx.HTTPError as exc:
                    out[path] = {"error": repr(exc)}
                say(f"GET {path}: {out[path]}")
        sender = TicketSender(cluster.url, sims)
        sent = await sender.send(tenants[0], retries=2)
        out["webhook"] = {"status": sent.status, "enhancement_id": sent.enhancement_id}
        if sent.enhancement_id:
            rows = await wait_terminal(db, [sent.enhancement_id], args.timeout)
            out["job"] = {k: rows[0][k] for k in ("status", "outcome", "error")} if rows else None
        say(f"webhook: {out['webhook']}, job: {out.get('job')}")
        details = serve_instance_details()
        out["proxies"] = {
            node: {k: p.get(k) for k in ("status", "node_ip", "actor_name")}
            for node, p in details.get("proxies", {}).items()
        }
        out["target_groups"] = details.get("target_groups")
        out["haproxy_config"] = haproxy_lines()
        return out
    finally:
        if sender is not None:
            await sender.close()
        if cluster is not None:
            cluster.shutdown()
        sims.stop()
        remove_data_dir(data_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.haproxy_multinode")
    parser.add_argument("--head-cpus", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    result = asyncio.run(probe(args))
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
