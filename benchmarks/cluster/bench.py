"""The rendered KubeRay deployment on a cluster of real hosts (``local_stack.hosts``): intake
through HAProxy vs Serve's proxy across hosts, and the head's loss.

    python -m benchmarks.cluster intake       [--seconds 45 --concurrency 24]
    python -m benchmarks.cluster head-loss    [--kinds gcs,head --ft off,on --backlog 500]
    python -m benchmarks.cluster link-cut     [--cut-s 30]

Every run starts its own cluster: the head (num-cpus 0), worker hosts, PostgreSQL, the SDP
and LLM simulators (and Redis with GCS fault tolerance) each on a network namespace with its
own address, the rendered NetworkPolicies enforced on every host, the Serve application
deployed through the head's dashboard as KubeRay does. Webhooks come from the ingress
controller's host, spread over the worker hosts' Serve ports, each refused one retried every
second as SDP retries.

- ``intake``: for each ingress mode, one cluster of two worker hosts; ``--concurrency``
  senders post signed webhooks for ``--seconds``; acknowledged webhooks/s, ack latency, and
  the CPU seconds of every Ray process (all hosts) per acknowledged webhook. In HAProxy mode,
  the ``server`` lines of each host's HAProxy show whether it reaches the Ingress replicas on
  other hosts.
- ``head-loss``: per kind (``gcs``: SIGKILL of the GCS server, after which ``ray start
  --block`` stops the head and its container is started again, as the kubelet restarts a
  KubeRay head; ``head``: every process of the head host killed at once, then the same
  restart) and with GCS fault tolerance off and on: a backlog of ``--backlog`` webhooks at a
  ``--llm-latency`` s LLM, a steady stream at ``--rate``/s, the kill ``--kill-after`` s into the
  stream. Measured: seconds in which webhooks were refused, webhooks each worker host
  acknowledged in the first ``--outage-window`` s, the longest time without a note written,
  seconds until the head answers with the application RUNNING again; counted: webhooks
  acknowledged and then lost, jobs unfinished or failed, duplicate notes, restarts.
- ``link-cut``: one worker host's cable unplugged for ``--cut-s`` s mid-run (backlog and
  stream as above): refused seconds, lost, duplicates, unfinished jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.rig.report import machine_info, percentile, print_table
from local_stack.hosts.cluster import HostCluster
from local_stack.hosts.network import namespace_pids
from local_stack.hosts.ray_nodes import ClusterSpec
from local_stack.hosts.traffic import (
    Sender,
    accepted_by_target,
    account,
    note_gap_s,
    refused_seconds,
    unfinished_jobs,
    wait_until,
)

say = lambda m: print(f"[cluster] {m}", file=sys.stderr, flush=True)  # noqa: E731


def cpu_seconds(cluster: HostCluster, hosts: list[str]) -> float:
    """CPU seconds used so far by every live process of ``hosts``."""
    import psutil

    total = 0.0
    for host in hosts:
        for pid in namespace_pids(cluster.host(host).namespace):
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
    return total


def notes(cluster: HostCluster) -> list[Any]:
    assert cluster.sims is not None
    return [n for t in cluster.tenants for n in cluster.sims.sdp.recorded_notes(t.id)]


# ---------------------------------------------------------------------------- intake


def intake_run(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = ClusterSpec(workers=2, ingress_mode=mode, llm_latency_s=0.2)  # type: ignore[arg-type]
    with HostCluster(spec, label="intake") as cluster:
        assert cluster.sims is not None
        say(f"{mode}: cluster up in {cluster.timings['start_s']} s")
        sender = Sender(cluster.serve_urls(), cluster.sims, give_up_s=30)
        loop = cluster.loop("ingress")
        loop.run(sender.start())
        time.sleep(3)  # readiness probes
        hosts = ["head", *cluster.worker_names]
        cpu_before = cpu_seconds(cluster, hosts)

        async def closed_loop() -> None:
            deadline = time.monotonic() + args.seconds

            async def one(i: int) -> None:
                while time.monotonic() < deadline:
                    await sender.send(cluster.tenants[i % len(cluster.tenants)])

            await asyncio.gather(*(one(i) for i in range(args.concurrency)))

        started = time.time()
        loop.run(closed_loop(), timeout_s=args.seconds + 120)
        elapsed = time.time() - started
        cpu = cpu_seconds(cluster, hosts) - cpu_before
        acked = [h for h in sender.webhooks if h.acknowledged]
        latencies = sorted(a.seconds * 1000 for a in sender.attempts if a.status in (200, 202))
        by_host = accepted_by_target(sender.attempts, started, started + elapsed + 60)
        loop.run(sender.close())
        return {
            "mode": mode,
            "acknowledged": len(acked),
            "per_s": round(len(acked) / elapsed, 1),
            "ack_ms_p50": round(percentile(latencies, 50) or 0, 1),
            "ack_ms_p99": round(percentile(latencies, 99) or 0, 1),
            "refused_attempts": sum(1 for a in sender.attempts if a.status not in (200, 202)),
            "cpu_s": round(cpu, 1),
            "cpu_ms_per_webhook": round(1000 * cpu / max(1, len(acked)), 2),
            "by_worker_host": by_host,
            "haproxy_servers": cluster.haproxy_servers() if mode == "haproxy" else {},
            "worker_ips": {w: cluster.host(w).ip for w in cluster.worker_names},
        }


# ---------------------------------------------------------------------------- head loss


def _backlog(cluster: HostCluster, sender: Sender, count: int) -> float:
    """``count`` webhooks as fast as 32 senders go; returns the seconds it took."""

    async def burst() -> None:
        queue = list(range(count))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await sender.send(cluster.tenants[i % len(cluster.tenants)])

        await asyncio.gather(*(worker() for _ in range(32)))

    started = time.monotonic()
    cluster.loop("ingress").run(burst(), timeout_s=900)
    return round(time.monotonic() - started, 1)


def _watch_head(cluster: HostCluster, since: float, out: dict[str, float]) -> threading.Thread:
    """Record when, after ``since``, the dashboard answers again with the app RUNNING."""

    def poll() -> None:
        assert cluster.operator is not None
        while time.time() - since < 900:
            apps = cluster.operator.applications()
            if apps and all(a.get("status") == "RUNNING" for a in apps.values()):
                out["app_running_again_s"] = round(time.time() - since, 1)
                return
            time.sleep(1)

    thread = threading.Thread(target=poll, daemon=True)
    return thread


def _statuses(attempts: Any) -> dict[str, int]:
    """Attempts per HTTP status: here the 4xx answers the sender does not retry (SDP would
    not either), so a webhook that got one is never acknowledged."""
    out: dict[str, int] = {}
    for attempt in attempts:
        out[str(attempt.status)] = out.get(str(attempt.status), 0) + 1
    return out


def disruption_run(kind: str, ft: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One cluster: backlog, steady stream, then ``kind`` (gcs, head, link) mid-stream."""
    spec = ClusterSpec(workers=2, gcs_fault_tolerance=ft, llm_latency_s=args.llm_latency)
    with HostCluster(spec, label=kind) as cluster:
        assert cluster.sims is not None and cluster.db is not None
        say(f"{kind} ft={ft}: cluster up in {cluster.timings['start_s']} s")
        sender = Sender(cluster.serve_urls(), cluster.sims, give_up_s=args.give_up)
        loop = cluster.loop("ingress")
        loop.run(sender.start())
        time.sleep(3)
        backlog_s = _backlog(cluster, sender, args.backlog)
        say(f"backlog of {args.backlog} acknowledged in {backlog_s} s")
        restarts = {name: c.starts for name, c in cluster.all_containers().items()}
        stream = loop.submit(sender.steady(cluster.tenants, args.rate, args.stream_s))
        time.sleep(args.kill_after)
        recovered: dict[str, float] = {}
        if kind == "gcs":
            killed = cluster.kill_gcs()
        elif kind == "head":
            killed = cluster.kill_head()
        else:
            killed = time.time()
        watcher = _watch_head(cluster, killed, recovered)
        if kind in ("gcs", "head"):
            watcher.start()
        else:
            cluster.cut_link("w1", args.cut_s)
        say(f"{kind} at {killed:.0f}; waiting for the stream to end")
        stream.result(timeout=args.stream_s + args.give_up + 120)
        stream_end = time.time()
        acked = [h for h in sender.webhooks if h.acknowledged]
        wanted = {(h.tenant, h.ticket) for h in acked}

        def drained() -> bool:
            return wanted <= {(n.portal, str(n.request_id)) for n in notes(cluster)}

        try:
            wait_until(drained, args.drain_timeout, period_s=2)
        except TimeoutError:
            say("not every acknowledged webhook got its note before the drain timeout")
        drained_at = time.time()
        written = notes(cluster)
        jobs = loop.run(
            unfinished_jobs(cluster.db.database.owner_url, [str(h.enhancement_id) for h in acked])
        )
        loop.run(sender.close())
        outage_end = killed + args.outage_window
        stream_hooks = [h for h in sender.webhooks if h.first_sent >= killed - args.kill_after]
        return {
            "kind": kind,
            "gcs_ft": ft,
            "backlog": args.backlog,
            "backlog_s": backlog_s,
            "stream": len(stream_hooks),
            **account(sender, written),
            "refused_s": refused_seconds(sender.attempts, killed, stream_end),
            "refused_for_good": _statuses(a for a in sender.attempts if 400 <= a.status < 500),
            "accepted_in_outage_window": accepted_by_target(sender.attempts, killed, outage_end),
            "note_gap_s": note_gap_s(written, killed - 1, stream_end),
            "app_running_again_s": recovered.get("app_running_again_s"),
            "drain_s": round(drained_at - stream_end, 1),
            "jobs": jobs,
            "restarts": {
                n: c.starts - restarts.get(n, 0) for n, c in cluster.all_containers().items()
            },
            "serve_config_resubmitted": len(cluster.operator.submissions) - 1
            if cluster.operator
            else None,
            "worker_ips": {w: cluster.host(w).ip for w in cluster.worker_names},
        }


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster")
    parser.add_argument("scenario", choices=["intake", "head-loss", "link-cut"])
    parser.add_argument("--modes", default="proxy,haproxy", help="intake: ingress modes")
    parser.add_argument("--seconds", type=float, default=45.0, help="intake: load duration")
    parser.add_argument("--concurrency", type=int, default=24, help="intake: senders")
    parser.add_argument("--kinds", default="gcs,head", help="head-loss: gcs,head")
    parser.add_argument("--ft", default="off,on", help="head-loss: GCS fault tolerance off,on")
    parser.add_argument("--backlog", type=int, default=500)
    parser.add_argument("--llm-latency", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2.0, help="steady webhooks per second")
    parser.add_argument("--stream-s", type=float, default=150.0)
    parser.add_argument("--kill-after", type=float, default=20.0)
    parser.add_argument("--outage-window", type=float, default=20.0)
    parser.add_argument("--cut-s", type=float, default=30.0)
    parser.add_argument("--give-up", type=float, default=400.0, help="per webhook, seconds")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--json", default="")
    return parser.parse_args(argv)


def report(scenario: str, runs: list[dict[str, Any]]) -> None:
    if scenario == "intake":
        base = next((r for r in runs if r["mode"] == "proxy"), runs[0])
        print_table(
            "Intake across hosts (webhooks from the ingress host to two worker hosts)",
            ["mode", "ack/s", "ratio", "p50 ms", "p99 ms", "CPU ms/webhook", "refused"],
            [
                [r["mode"], r["per_s"], round(r["per_s"] / max(base["per_s"], 0.1), 2),
                 r["ack_ms_p50"], r["ack_ms_p99"], r["cpu_ms_per_webhook"],
                 r["refused_attempts"]]
                for r in runs
            ],
        )  # fmt: skip
        return
    print_table(
        f"{scenario}: webhooks refused, notes stalled, nothing lost",
        ["kind", "GCS FT", "refused s", "app back s", "note gap s", "acked", "never acked", "lost",
         "dup notes", "jobs unfinished/failed", "head restarts", "worker restarts"],
        [
            [r["kind"], "on" if r["gcs_ft"] else "off", r["refused_s"], r["app_running_again_s"],
             r["note_gap_s"], r["acknowledged"], r["never_acknowledged"],
             r["acknowledged_then_lost"],
             r["duplicate_notes"], f"{r['jobs']['not_finished']}/{r['jobs']['failed']}",
             r["restarts"].get("head", 0),
             sum(v for k, v in r["restarts"].items() if k != "head")]
            for r in runs
        ],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # a SIGTERM (``timeout``, CI cancelling) unwinds like an exception, so the cluster's
    # context manager still tears every namespace and process down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args(argv)
    machine = machine_info()
    runs: list[dict[str, Any]] = []
    if args.scenario == "intake":
        for mode in args.modes.split(","):
            runs.append(intake_run(mode, args))
            say(json.dumps(runs[-1]))
    elif args.scenario == "head-loss":
        for kind in args.kinds.split(","):
            for ft in args.ft.split(","):
                runs.append(disruption_run(kind, ft == "on", args))
                say(json.dumps(runs[-1]))
    else:
        runs.append(disruption_run("link", True, args))
        say(json.dumps(runs[-1]))
    report(args.scenario, runs)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "args": vars(args), "runs": runs}, indent=1)
        )
